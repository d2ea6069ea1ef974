"""Resolving a configuration's names into the concrete parts a run is built from.

This is the only place the training recipe looks names up in the registries; it reads no files,
so bad names fail fast, before any heavy work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnkit.augment.pipeline import Resolved, resolve
from cnnkit.config import TrainConfig
from cnnkit.data.resolve import resolve_data
from cnnkit.engine.model_kwargs import blaming_kwargs, check_model_kwargs
from cnnkit.engine.optim import OPTIMIZERS, SCHEDULERS, check_choice
from cnnkit.engine.precision import PRECISIONS
from cnnkit.errors import CnnkitError, UsageError
from cnnkit.plugins import registry
from cnnkit.registry import Entry, guarded
from cnnkit.values import parse_image_size, parse_model_kwargs


@dataclass
class Plan:
    """Everything a config names, looked up before any heavy work starts."""

    model: Entry | None
    """None for a cnnkit checkpoint as the backbone (its model is named inside it)."""
    dataset: Entry
    augment: Resolved
    initializer: Entry | None
    strategy: Entry


def check_run_name(name: str) -> None:
    if name and name.strip() != name:
        raise UsageError(f"--name {name!r} must not be blank or start or end with spaces.")
    if len(name.encode()) > 200:
        raise UsageError(f"--name is {len(name.encode())} bytes long; keep it under 200 (file systems allow 255).")
    if Path(name).name != name or name in (".", ".."):
        raise UsageError(f"--name '{name}' must be a plain folder name; use --out for the folder that holds runs.")


def checked_input_size(entry: Entry) -> tuple[int, int, int]:
    """A model entry's ``input_size`` metadata (channels, height, width), or an error naming the
    model and the plugin at fault."""
    size = entry.metadata.get("input_size", (3, 224, 224))
    whole = lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0  # noqa: E731
    if not (isinstance(size, (tuple, list)) and len(size) == 3 and all(whole(v) for v in size)):
        raise CnnkitError(
            f"model '{entry.name}' of plugin '{entry.plugin}' declares input_size {size!r}; it must be three "
            "positive whole numbers (channels, height, width). Tell the plugin's author."
        )
    return tuple(size)


def from_plugin(entry: Entry, call: Callable[[], Any]) -> Any:
    """``call()`` (which runs plugin code for ``entry``), with any failure naming the entry and
    plugin; :meth:`Entry.create` already does this for the factory itself."""
    return guarded(entry, call)


def check_transfer_options_unused(config: TrainConfig) -> None:
    given = [flag for flag, used in (("--freeze", config.freeze), ("--weights", config.weights), ("--unfreeze-at", config.unfreeze_at),
                                      ("--no-pretrained", not config.pretrained), ("--backbone-lr-mult", config.backbone_lr_mult is not None),
                                      ("--similar/--different", config.similar is not None)) if used]
    if given:
        raise UsageError(f"{', '.join(given)} only apply to fine-tuning: use 'cnnkit finetune --backbone NAME'.")


def make_plan(config: TrainConfig) -> Plan:
    check_run_name(config.name)
    parse_model_kwargs(config.model_kwargs)
    parse_image_size(config.image_size)
    check_choice("optimizer", config.optimizer, OPTIMIZERS)
    check_choice("scheduler", config.scheduler, SCHEDULERS)
    check_choice("precision", config.precision, PRECISIONS)
    if config.backbone:
        from cnnkit.transfer.setup import backbone_entry, check_options

        check_options(config)
        model = backbone_entry(config)
    else:
        check_transfer_options_unused(config)
        given = parse_model_kwargs(config.model_kwargs)
        model = registry("models").get(config.model)
        check_model_kwargs(model, given)
        model = blaming_kwargs(model, given)
    size = parse_image_size(config.image_size) or (checked_input_size(model)[1:] if model is not None else (224, 224))
    return Plan(
        model=model,
        dataset=resolve_data(config.data),
        augment=resolve(config.augment, registry("augmentations"), tuple(size)),
        initializer=registry("initializers").get(config.init) if config.init else None,
        strategy=registry("strategies").get(config.strategy),
    )
