"""The typed contract between cnnkit and its plugins, in one public module.

A plugin imports from here (and ``cnnkit.hookimpl``) and nowhere else inside cnnkit. For every
hook there is a ``Register`` protocol (what ``register`` takes: the name, the factory and the
metadata as typed keyword parameters), the factory's protocol and what it returns. Each contract
is a ``typing.Protocol`` (structural: implement the members, no base class needed) or a dataclass,
so ``mypy --strict`` checks a plugin against it.

A factory is a callable or a :class:`Reference` string ``"package.module:attribute"``, imported
when the entry is first used. Importing this module never imports torch: the data containers and
strategy bases that need it (``Split``, ``StreamedSplit``, ``DataSplits``, ``UnreadableImage``,
``SingleProcessStrategy``, ``DistributedStrategy``, ``shard_steps``, and the file-reading helpers
for dataset plugins: ``IMAGE_EXTENSIONS``, ``probe_image``, ``image_files``, ``stratified_split``,
``new_dataset``; ``prepare_training``, which builds a :class:`TrainingSession` as ``cnnkit train``
builds its run) are imported on first use. ``CnnkitError`` (exit 1) and ``UsageError`` (exit 2)
are the errors cnnkit prints as one line; ``note`` and ``warn`` print cnnkit's one-line messages.

``API_VERSION`` is the version of this contract; a plugin module declares the range it was
written for as ``CNNKIT_API = ">=1.0,<2"`` (a PEP 440 specifier), and is skipped with a warning
by a cnnkit whose ``API_VERSION`` is outside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnnkit.console import note, warn
from cnnkit.contracts._api import API_VERSION, REGISTERS
from cnnkit.contracts._augmentations import (
    BATCH_STAGE,
    PRESET_STAGE,
    SAMPLE_STAGE,
    AugmentationRegister,
    AugmentParam,
    BatchAugment,
    BatchAugmentFactory,
    BatchedWhen,
    PresetFactory,
    SampleAugment,
    SampleAugmentFactory,
    Stage,
)
from cnnkit.contracts._callbacks import (
    BestChanged,
    Callback,
    CallbackFactory,
    CallbackOptions,
    CallbackRegister,
    EpochEnded,
    RunCallback,
    RunEnded,
    RunStarted,
)
from cnnkit.contracts._commands import CommandFactory, CommandRegister
from cnnkit.contracts._data import DataRequest, DatasetFactory, DatasetRegister, ImageSource
from cnnkit.contracts._initializers import BatchInitializer, Initializer, InitializerFactory, InitializerRegister
from cnnkit.contracts._models import (
    FamilyDescriber,
    FamilyLister,
    ModelFactory,
    ModelFamilyFactory,
    ModelRegister,
    Preprocessing,
    Pretrained,
    PretrainedLoader,
)
from cnnkit.contracts._registration import Reference, Registration
from cnnkit.contracts._sessions import TrainingSession
from cnnkit.contracts._strategies import Strategy, StrategyFactory, StrategyOptions, StrategyRegister
from cnnkit.errors import CnnkitError, UsageError

if TYPE_CHECKING:
    from cnnkit.data.images import UnreadableImage
    from cnnkit.data.public import IMAGE_EXTENSIONS, image_files, new_dataset, probe_image, stratified_split
    from cnnkit.data.splits import DataSplits, Split, StreamedSplit
    from cnnkit.engine.strategies import DistributedStrategy, SingleProcessStrategy, shard_steps
    from cnnkit.recipe.session import prepare_training

_LAZY = {
    "Split": "cnnkit.data.splits",
    "StreamedSplit": "cnnkit.data.splits",
    "DataSplits": "cnnkit.data.splits",
    "UnreadableImage": "cnnkit.data.images",
    "SingleProcessStrategy": "cnnkit.engine.strategies",
    "DistributedStrategy": "cnnkit.engine.strategies",
    "shard_steps": "cnnkit.engine.strategies",
    "IMAGE_EXTENSIONS": "cnnkit.data.public",
    "image_files": "cnnkit.data.public",
    "new_dataset": "cnnkit.data.public",
    "probe_image": "cnnkit.data.public",
    "stratified_split": "cnnkit.data.public",
    "prepare_training": "cnnkit.recipe.session",
}

if not TYPE_CHECKING:  # type checkers see the real imports above; a misspelt name stays an error for them

    def __getattr__(name: str):
        """The names that need torch, imported on first use."""
        if name in _LAZY:
            import importlib

            return getattr(importlib.import_module(_LAZY[name]), name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "API_VERSION", "REGISTERS", "Reference", "Registration",
    # models
    "ModelRegister", "ModelFactory", "ModelFamilyFactory", "PretrainedLoader", "Pretrained", "Preprocessing",
    "FamilyLister", "FamilyDescriber",
    # datasets
    "DatasetRegister", "DatasetFactory", "DataRequest", "DataSplits", "Split", "StreamedSplit", "ImageSource",
    "UnreadableImage", "IMAGE_EXTENSIONS", "image_files", "new_dataset", "probe_image", "stratified_split",
    # augmentations
    "AugmentationRegister", "SampleAugmentFactory", "BatchAugmentFactory", "PresetFactory", "SampleAugment",
    "BatchAugment", "BatchedWhen", "AugmentParam", "Stage", "SAMPLE_STAGE", "BATCH_STAGE", "PRESET_STAGE",
    # initializers
    "InitializerRegister", "InitializerFactory", "Initializer", "BatchInitializer",
    # strategies
    "StrategyRegister", "StrategyFactory", "Strategy", "StrategyOptions", "SingleProcessStrategy",
    "DistributedStrategy", "shard_steps",
    # commands
    "CommandRegister", "CommandFactory",
    # callbacks: run observers such as experiment trackers (--log)
    "CallbackRegister", "CallbackFactory", "CallbackOptions", "RunCallback", "Callback", "RunStarted", "EpochEnded",
    "BestChanged", "RunEnded",
    # a training session, for commands that train as `cnnkit train` does
    "prepare_training", "TrainingSession",
    # messages: one line for the user (exit 2 for UsageError, 1 for CnnkitError)
    "CnnkitError", "UsageError", "note", "warn",
]
