"""Reading training options from TOML or JSON files (the options are :mod:`cnnkit.options`'s table).

Keys are the options' names (``batch_size``, or ``batch-size`` as the flag spells it), the same
names the ``config.json`` each run writes uses, so a run can be repeated with ``cnnkit train
--config runs/NAME/config.json``.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnkit.errors import UsageError
from cnnkit.options import FIELD_NAMES, MUST_EXIST, OPTIONS, absolute_paths, spelled_as_path
from cnnkit.registry import suggest, unknown_name_message

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


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
            options[key.replace("-", "_")] = OPTIONS[key.replace("-", "_")].rule.check(value)
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
