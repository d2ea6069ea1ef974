"""Checkpoints as plain data: tensors, numbers, strings, lists and dicts.

Saving is atomic (temporary file in the same folder, then rename), so an interrupted save never
corrupts the previous file. Loading uses ``torch.load(weights_only=True)``, which refuses to
unpickle arbitrary Python objects.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from cnnkit.errors import CnnkitError

FORMAT = "cnnkit.checkpoint"
FORMAT_VERSION = 1


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    atomic_write(path, lambda f: torch.save(data, f))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CnnkitError(f"Checkpoint '{path}' does not exist.")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CnnkitError(f"Cannot load checkpoint '{path}' safely (weights only): {first_line}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CnnkitError(f"'{path}' is not a cnnkit checkpoint.")
    return data
