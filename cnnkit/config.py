"""Training options: their defaults, and reading them from TOML or JSON files.

The same field names are used by ``cnnkit train`` flags (``batch_size`` <-> ``--batch-size``),
by config files and by the ``config.json`` each run writes, so a run can be repeated with
``cnnkit train --config runs/NAME/config.json``.

Relative paths in a config file are relative to the folder of the file itself, as in
TOML-configured tools, and only to it: never to the working folder. A file reached through a
symbolic link is read from where it really is, so its paths mean the same from every link to it.
A name that is not a path stays a name: ``data = "digits"`` (a registered dataset) and
``backbone = "resnet18"`` (a registered model). ``config.json`` records absolute paths
(:meth:`TrainConfig.to_dict`), so it repeats a run from any folder; in a run's own
``config.json`` written by an earlier cnnkit, relative paths are relative to the folder the run
was started from, and are read that way.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from cnnkit.errors import UsageError
from cnnkit.options import RULES
from cnnkit.registry import suggest, unknown_name_message

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
    backbone_lr_mult: float | None = None
    similar: bool | None = None
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
    workers: int | None = None
    augment: str = ""
    mix_prob: float = 1.0
    init: str = ""
    init_bias: float | None = None
    strategy: str = "auto"
    nproc_per_node: int = 0
    nnodes: int = 1
    node_rank: int = -1
    rdzv_endpoint: str = ""
    rdzv_timeout: int = 300
    sync_bn: bool = False
    precision: str = "auto"
    channels_last: bool | None = None
    compile: bool = False
    deterministic: bool | None = None
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
        """The options as ``config.json`` records them: relative paths made absolute, so the record
        holds wherever it is read from."""
        return absolute_paths(asdict(self), Path.cwd())


FIELD_NAMES = [f.name for f in fields(TrainConfig)]

RESUME_MUST_MATCH = (
    "model", "model_kwargs", "backbone", "weights", "pretrained", "freeze", "unfreeze_at", "backbone_lr_mult", "similar",
    "data", "batch_size", "lr", "optimizer", "weight_decay", "momentum", "nesterov", "scheduler", "step_size", "gamma",
    "label_smoothing", "val_split", "image_size", "augment", "mix_prob", "init", "init_bias", "seed", "strategy",
    "nproc_per_node", "nnodes", "sync_bn", "precision", "channels_last",
)
"""Options that shape the training trajectory: a resumed run must keep them, or it would not end
where the uninterrupted run would. The others (epochs, patience, device, ...) may change."""


PATH_OPTIONS = ("data", "data_dir", "out", "resume", "weights", "backbone")
"""Options that hold a path (``data``, ``weights`` and ``backbone`` only when they are not a name)."""
ALWAYS_PATHS = ("data_dir", "out", "resume")
MUST_EXIST = ("data", "backbone", "weights", "resume")
"""Path options that name something to read (``out`` and ``data_dir`` are made when missing)."""


def absolute_paths(options: dict[str, Any], base: Path) -> dict[str, Any]:
    """``options`` with each relative path made absolute against ``base``; names stay names."""
    base = Path(os.path.abspath(base))
    resolved = dict(options)
    for name in PATH_OPTIONS:
        value = options.get(name)
        if isinstance(value, str) and value and _is_path(name, value, base):
            resolved[name] = os.path.abspath(base / Path(value).expanduser())
    return resolved


def spelled_as_path(value: str) -> bool:
    return os.sep in value or "/" in value or value.startswith((".", "~"))


def _is_path(name: str, value: str, base: Path) -> bool:
    """Whether ``value`` of option ``name`` is a path: ``data`` unless it is a registered dataset's
    name, ``backbone`` unless it is a registered model's (and then only when it is spelled as a
    path, is a ``.pt`` file or exists under ``base``), ``weights`` when it is a file."""
    if name in ALWAYS_PATHS or value.startswith((".", "~")):
        return True
    if name == "weights":
        from cnnkit.transfer.pretrained import is_file_spec

        return is_file_spec(value)
    from cnnkit.plugins import registry

    if name == "data":
        return value not in registry("datasets")
    if value in registry("models"):
        return False
    return spelled_as_path(value) or value.endswith(".pt") or (base / value).exists()


def is_run_record(path: Path) -> bool:
    """A run's own ``config.json`` (beside its ``last.pt``): its relative paths, if an earlier
    cnnkit wrote any, are relative to the folder the run was started from."""
    return path.name == "config.json" and (path.parent / "last.pt").is_file()


@dataclass(frozen=True)
class ConfigFile:
    """The options of a config file, and which of them are paths it holds relative to its folder."""

    path: Path
    """As the user gave it (messages name it so)."""
    options: dict[str, Any]
    """Checked, relative paths made absolute."""
    relative: dict[str, str]
    """Option -> the relative path as written, for the paths made absolute against the file's folder."""


def load_config_file(path: str | Path) -> ConfigFile:
    """Options from a ``.toml`` or ``.json`` file; keys and values checked by the same rules as
    flags, relative paths made absolute against the folder of the real file (links followed)."""
    path = Path(path)
    values = _parse(path)
    options = _checked_options(path, values)
    real = Path(os.path.realpath(path))
    if is_run_record(real):
        return ConfigFile(path, options, {})
    resolved = absolute_paths(options, real.parent)
    relative = {key: options[key] for key in resolved
                if resolved[key] != options[key] and not Path(options[key]).expanduser().is_absolute()}
    return ConfigFile(path, resolved, relative)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The options of :func:`load_config_file`."""
    return load_config_file(path).options


def missing_path_message(config: ConfigFile, key: str, value: Any) -> str | None:
    """For a path the file holds relative to its folder, an error naming the file, the key and the
    path it resolves to, when nothing is there; else None."""
    written = config.relative.get(key)
    if key not in MUST_EXIST or written is None or value != config.options.get(key) or Path(value).exists():
        return None
    message = (f"{config.path}: option '{key}': '{value}' does not exist ('{written}' is relative to the config file's "
               f"folder, not to the working folder)")
    if key == "data" and not spelled_as_path(written):
        from cnnkit.plugins import registry, unloaded_plugins_note

        close = suggest(written, registry("datasets").names())
        meant = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        return f"{message}, and '{written}' is not a registered dataset either{meant}.{unloaded_plugins_note(written)}"
    return message + "."


def _parse(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UsageError(f"Config file '{path}' {'is not a regular file' if path.exists() else 'does not exist'}.")
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise UsageError(f"Config file '{path}' must end in .toml or .json.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"Config file '{path}' is not valid {suffix[1:].upper()}: {exc}") from None
    try:
        values = tomllib.loads(text) if suffix == ".toml" else json.loads(text, object_pairs_hook=_no_duplicates)
    except ValueError as exc:
        key = exc.key if isinstance(exc, DuplicateKey) else _toml_duplicate(text, exc) if suffix == ".toml" else None
        if key:
            raise UsageError(f"{path}: option '{key}' is given twice; keep one.") from None
        raise UsageError(f"Config file '{path}' is not valid {suffix[1:].upper()}: {exc}") from None
    if not isinstance(values, dict):
        raise UsageError(f"Config file '{path}' must hold a table of options, not {type(values).__name__}.")
    return values


class DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (``json`` would keep the last silently)."""
    values: dict[str, Any] = {}
    for key, value in pairs:
        if key in values:
            raise DuplicateKey(key)
        values[key] = value
    return values


def _toml_duplicate(text: str, exc: ValueError) -> str | None:
    """The key of the line tomllib refuses as a second value for one key, if that is the error."""
    match = re.match(r"Cannot overwrite a value \(at line (\d+),", str(exc))
    lines = text.splitlines()
    if not match or int(match.group(1)) > len(lines):
        return None
    key = lines[int(match.group(1)) - 1].partition("=")[0].strip().strip("\"'")
    return key or None


def _checked_options(path: Path, values: dict[str, Any]) -> dict[str, Any]:
    """Every key known (all unknown ones named at once), none given twice under its two
    spellings (``batch-size`` and ``batch_size``), every value valid."""
    unknown = [key for key in values if key.replace("-", "_") not in FIELD_NAMES]
    if unknown:
        raise UsageError(f"{path}: {unknown_options_message(unknown)}")
    spellings: dict[str, list[str]] = {}
    for key in values:
        spellings.setdefault(key.replace("-", "_"), []).append(key)
    for name, keys in spellings.items():
        if len(keys) > 1:
            raise UsageError(f"{path}: option '{name}' is given twice (as {' and '.join(repr(k) for k in keys)}); keep one.")
    options = {}
    for key, value in values.items():
        try:
            options[key.replace("-", "_")] = RULES[key.replace("-", "_")].check(value)
        except ValueError as exc:
            raise UsageError(f"{path}: option '{key}' {exc}.") from None
    return options


def unknown_options_message(keys: list[str]) -> str:
    """One line for every unknown key, each with its did-you-mean."""
    listing = f"Known options: {', '.join(FIELD_NAMES)}."
    if len(keys) == 1:
        return unknown_name_message("option", keys[0], FIELD_NAMES, listing)
    shown = []
    for key in keys:
        close = suggest(key.replace("-", "_"), FIELD_NAMES)
        shown.append(f"'{key}'" + (f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""))
    everything_close = all("did you mean" in text for text in shown)
    return f"Unknown options {', '.join(shown[:-1])} and {shown[-1]}." + ("" if everything_close else f" {listing}")
