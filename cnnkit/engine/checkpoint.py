"""Checkpoints as plain data: tensors, numbers, strings, lists and dicts.

Saving is atomic (temporary file in the same folder, then rename), so an interrupted save never
corrupts the previous file. Loading uses ``torch.load(weights_only=True)``, which refuses to
unpickle arbitrary Python objects.
"""

from __future__ import annotations

import errno
import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from cnnkit.errors import CnnkitError

FORMAT = "cnnkit.checkpoint"
FORMAT_VERSION = 1


WRITE_ERRORS = {
    errno.ENOSPC: "no space left on the device",
    errno.EFBIG: "the file is too large (a file-size limit is set)",
    errno.EDQUOT: "the disk quota is exceeded",
}


def current_umask() -> int:
    """The process umask, read from /proc where Linux shows it: setting the umask to read it
    (the portable way, used elsewhere) is not safe while other threads create files."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``: a crash
    or a full disk leaves the previous file whole. The file gets the usual permissions (0666 less
    the umask). A failure is a ``CnnkitError`` naming the file and the reason."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~current_umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        reason = WRITE_ERRORS.get(exc.errno) or exc.strerror or str(exc)
        raise CnnkitError(f"Cannot write '{path}': {reason}. The files written before are kept.") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    buffer = io.BytesIO()
    torch.save(data, buffer)
    atomic_write(path, buffer.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CnnkitError(f"Checkpoint '{path}' does not exist.")
    try:
        with warnings.catch_warnings():  # torch's own notes on odd pickles; cnnkit's error says enough
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        why = ("it holds pickled objects other than tensors and plain data, which cnnkit never loads"
               if "Weights only load failed" in str(exc) else "the file is damaged or not a PyTorch checkpoint")
        raise CnnkitError(f"Cannot load checkpoint '{path}' safely: {why}.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CnnkitError(f"'{path}' is not a cnnkit checkpoint.")
    if int(data.get("format_version", 0)) > FORMAT_VERSION:
        raise CnnkitError(f"'{path}' was written by a newer cnnkit (checkpoint format {data['format_version']}, this "
                          f"version reads up to {FORMAT_VERSION}); upgrade cnnkit.")
    return data


def state_mismatch(own: dict[str, Any], state: dict[str, Any]) -> str:
    """How ``state`` fails to fit a model whose state dict is ``own`` (first keys and shapes that
    differ, are missing or are unexpected); "" when it fits."""
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    parts = [f"{what} {', '.join(keys[:3])}" for what, keys in
             (("shapes differ for", shapes), ("missing", missing), ("unexpected", unexpected)) if keys]
    return "; ".join(parts)
