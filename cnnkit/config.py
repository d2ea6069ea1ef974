"""Training options: their defaults, and reading them from TOML or JSON files.

The same field names are used by ``cnnkit train`` flags (``batch_size`` <-> ``--batch-size``),
by config files and by the ``config.json`` each run writes, so a run can be repeated with
``cnnkit train --config runs/NAME/config.json``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Optional

from cnnkit.errors import UsageError
from cnnkit.options import RULES
from cnnkit.registry import unknown_name_message

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


@dataclass(frozen=True)
class TrainConfig:
    model: str = "mnist-cnn"
    model_kwargs: str = ""
    backbone: str = ""
    weights: str = ""
    pretrained: bool = True
    freeze: str = ""
    unfreeze_at: int = 0
    backbone_lr_mult: Optional[float] = None
    similar: Optional[bool] = None
    data: str = "digits"
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    optimizer: str = "adamw"
    weight_decay: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    scheduler: str = "cosine"
    step_size: int = 10
    gamma: float = 0.1
    label_smoothing: float = 0.1
    patience: int = 5
    val_split: float = 0.2
    image_size: str = ""
    data_dir: str = ""
    data_in_memory: str = "auto"
    memory_budget: float = 2.0
    workers: Optional[int] = None
    augment: str = ""
    mix_prob: float = 1.0
    init: str = ""
    init_bias: Optional[float] = None
    strategy: str = "auto"
    nproc_per_node: int = 0
    nnodes: int = 1
    node_rank: int = -1
    rdzv_endpoint: str = ""
    sync_bn: bool = False
    precision: str = "auto"
    channels_last: Optional[bool] = None
    compile: bool = False
    deterministic: Optional[bool] = None
    seed: int = 0
    device: str = "auto"
    name: str = ""
    out: str = "runs"
    quiet: bool = False
    resume: str = ""

    def __post_init__(self) -> None:
        """Every way of making options (flags, files, ``--resume``, the Python API) ends here."""
        for name, rule in RULES.items():
            try:
                object.__setattr__(self, name, rule.check(getattr(self, name)))
            except ValueError as exc:
                raise UsageError(f"Option '{name}' {exc}.") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)



FIELD_NAMES = [f.name for f in fields(TrainConfig)]

RESUME_MUST_MATCH = (
    "model", "model_kwargs", "backbone", "weights", "pretrained", "freeze", "unfreeze_at", "backbone_lr_mult", "similar",
    "data", "batch_size", "lr", "optimizer", "weight_decay", "momentum", "nesterov", "scheduler", "step_size", "gamma",
    "label_smoothing", "val_split", "image_size", "augment", "mix_prob", "init", "init_bias", "seed", "strategy",
    "nproc_per_node", "nnodes", "sync_bn", "precision", "channels_last",
)
"""Options that shape the training trajectory: a resumed run must keep them, or it would not end
where the uninterrupted run would. The others (epochs, patience, device, ...) may change."""


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Options from a ``.toml`` or ``.json`` file; keys and values checked by the same rules as flags."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"Config file '{path}' {'is not a regular file' if path.exists() else 'does not exist'}.")
    try:
        if path.suffix.lower() == ".toml":
            values = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        elif path.suffix.lower() == ".json":
            values = json.loads(path.read_text(encoding="utf-8-sig"))
        else:
            raise UsageError(f"Config file '{path}' must end in .toml or .json.")
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"Config file '{path}' is not valid {path.suffix[1:].upper()}: {exc}") from None
    if not isinstance(values, dict):
        raise UsageError(f"Config file '{path}' must hold a table of options, not {type(values).__name__}.")
    options = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in FIELD_NAMES:
            hint = f"Known options: {', '.join(FIELD_NAMES)}."
            raise UsageError(f"{path}: " + unknown_name_message("option", key, FIELD_NAMES, hint))
        try:
            options[name] = RULES[name].check(value)
        except ValueError as exc:
            raise UsageError(f"{path}: option '{key}' {exc}.") from None
    return options
