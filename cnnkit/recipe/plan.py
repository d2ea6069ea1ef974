"""Resolving a configuration's names into the concrete parts a run is built from.

This is the only place the training recipe looks names up in the registries and parses the
option mini-languages (``--image-size``, ``--model-kwargs``, ``--freeze``); it reads no files, so
bad names and values fail fast, before any heavy work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnkit.augment.pipeline import Resolved, resolve
from cnnkit.console import warn
from cnnkit.data.resolve import resolve_data
from cnnkit.engine.optim import OPTIMIZERS, SCHEDULERS, check_choice
from cnnkit.engine.precision import PRECISIONS
from cnnkit.errors import UsageError
from cnnkit.models.check import checked_input_size
from cnnkit.models.kwargs import blaming_kwargs, check_model_kwargs
from cnnkit.options import TRANSFER_ONLY, TrainConfig, flags_set
from cnnkit.plugins import registry
from cnnkit.recipe.observers import callback_entries
from cnnkit.registry import Entry
from cnnkit.values import Freeze, parse_image_size, parse_model_kwargs


@dataclass(frozen=True)
class Plan:
    """Everything a config names, looked up, and every mini-language value parsed, before any
    heavy work starts."""

    model: Entry | None
    """None for a cnnkit checkpoint as the backbone (its model is named inside it)."""
    dataset: Entry
    augment: Resolved
    initializer: Entry | None
    strategy: Entry
    image_size: tuple[int, int] | None = None
    """``--image-size`` (height, width); None: the model's own."""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    """``--model-kwargs`` (none when fine-tuning: the backbone's own are used)."""
    freeze: Freeze | None = None
    """``--freeze``, its default resolved; None without ``--backbone``."""
    callbacks: tuple[Entry, ...] = ()
    """``--log``: the callbacks to tell about the run."""


def check_run_name(name: str) -> None:
    if name and name.strip() != name:
        raise UsageError(f"--name {name!r} must not be blank or start or end with spaces.")
    if len(name.encode()) > 200:
        raise UsageError(f"--name is {len(name.encode())} bytes long; keep it under 200 (file systems allow 255).")
    if Path(name).name != name or name in (".", ".."):
        raise UsageError(f"--name '{name}' must be a plain folder name; use --out for the folder that holds runs.")


def check_transfer_options_unused(config: TrainConfig) -> None:
    """Refuse the transfer options (the table's ``only="finetune"``) in a run without ``--backbone``."""
    given = flags_set(config, TRANSFER_ONLY)
    if given:
        raise UsageError(f"{', '.join(given)} only apply to fine-tuning: use 'cnnkit finetune --backbone NAME'.")


def warn_about_combinations(config: TrainConfig, callbacks: tuple[Entry, ...]) -> None:
    """Options that do nothing, or twice, in this combination: said, not refused."""
    if config.log_uri and not callbacks:
        warn("--log-uri has no effect without --log (name the tracker, e.g. --log mlflow).")
    if config.class_weights == "auto" and config.sampler == "balanced":
        warn("--class-weights auto with --sampler balanced corrects the imbalance twice (rare classes are drawn more "
             "often and weigh more), so the model will over-predict them; use one of the two.")


def make_plan(config: TrainConfig) -> Plan:
    check_run_name(config.name)
    model_kwargs = parse_model_kwargs(config.model_kwargs)
    image_size = parse_image_size(config.image_size)
    check_choice("optimizer", config.optimizer, OPTIMIZERS)
    check_choice("scheduler", config.scheduler, SCHEDULERS)
    check_choice("precision", config.precision, PRECISIONS)
    freeze = None
    if config.backbone:
        from cnnkit.transfer.setup import backbone_entry, check_options

        freeze = check_options(config)
        model = backbone_entry(config)
        model_kwargs = {}
    else:
        check_transfer_options_unused(config)
        model = registry("models").get(config.model)
        check_model_kwargs(model, model_kwargs)
        model = blaming_kwargs(model, model_kwargs)
    size = image_size or (checked_input_size(model)[1:] if model is not None else (224, 224))
    callbacks = callback_entries(config.log)
    warn_about_combinations(config, callbacks)
    return Plan(
        model=model,
        dataset=resolve_data(config.data),
        augment=resolve(config.augment, registry("augmentations"), size),
        initializer=registry("initializers").get(config.init) if config.init else None,
        strategy=registry("strategies").get(config.strategy),
        image_size=image_size,
        model_kwargs=model_kwargs,
        freeze=freeze,
        callbacks=callbacks,
    )
