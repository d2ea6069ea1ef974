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

from cnnkit.errors import CnnkitError, UsageError

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


def write_reason(exc: OSError) -> str:
    """Why a write failed, in plain words (the system's own for most errors)."""
    known = WRITE_ERRORS.get(exc.errno) if exc.errno is not None else None
    return known or exc.strerror or str(exc)


def make_folder(path: Path) -> Path:
    """``path`` and its parents, made where missing; a failure is a ``CnnkitError`` naming the
    folder and the reason (as ``train`` words it for a run directory)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CnnkitError(f"Cannot create the folder '{path}': a file of that name is there.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CnnkitError(f"Cannot create the folder '{path}': {write_reason(exc)}.") from None
    return path


def refuse_overwrite(path: Path, force: bool, option: str = "--out") -> None:
    """Outputs never replace a file silently: an existing ``path`` needs ``--force``; a folder is
    never replaced (a usage error, with ``--force`` too)."""
    if Path(path).is_dir():
        raise UsageError(f"{option} '{path}' is a folder; name a file to write.")
    if Path(path).exists() and not force:
        raise UsageError(f"{option} '{path}' exists; pass --force to replace it, or choose another path.")


def data_folder(spec: str) -> Path | None:
    """The image folder that ``--data SPEC`` reads, resolved; None for a named dataset (a name
    wins over a folder of the same name, as ``--data`` reads it) or a folder that is gone."""
    from cnnkit.plugins import registry

    if not spec or spec in registry("datasets"):
        return None
    folder = Path(spec).expanduser()
    return folder.resolve() if folder.is_dir() else None


def refuse_inside_data(path: Path, data: Path | None, option: str, whose: str, noun: str = "folder") -> None:
    """Outputs never go where they would be read as images of the data: ``path`` (a ``noun``,
    file or folder, to write; a link to a folder is followed, a file is replaced as itself) that
    is ``data`` (a resolved image folder) or lies inside it is refused, naming ``whose`` data it is."""
    if data is None:
        return
    path = Path(path).expanduser()
    real = path.resolve() if path.is_dir() or path.name in ("", "..") else path.parent.resolve() / path.name
    if real == data or data in real.parents:
        where = "is" if real == data else "is inside"
        raise UsageError(f"{option} '{path}' {where} '{data}', {whose}: images written there would be read as "
                         f"training images. Choose a {noun} outside it.")


def fresh_folder(parent: Path, base: str) -> Path:
    """A new folder ``parent/base``, or ``base-2``, ``base-3``... where earlier ones exist (numbered
    as run directories are), so nothing written before is replaced."""
    make_folder(parent)
    candidate, n = Path(parent) / base, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = Path(parent) / f"{base}-{n}"
        except OSError as exc:
            raise CnnkitError(f"Cannot create the folder '{candidate}': {write_reason(exc)}.") from None


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
        raise CnnkitError(f"Cannot write '{path}': {write_reason(exc)}. The files written before are kept.") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    buffer = io.BytesIO()
    torch.save(data, buffer)
    atomic_write(path, buffer.getvalue())


SIGNATURES = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
              (b"%PDF", "a PDF document"), (b"\x1f\x8b", "a gzip archive"), (b"\x93NUMPY", "a NumPy array file"))


def file_kind(path: Path) -> str:
    """What ``path`` holds when it is plainly not a PyTorch checkpoint ("a JSON file", "an empty
    file", "a PNG image", "a text file"); "" for a zip archive or pickle (what torch.save writes)
    and for anything not recognised, which ``torch.load`` then judges."""
    import json

    try:
        with open(path, "rb") as f:
            head = f.read(1 << 20)
    except OSError:
        return ""
    if not head:
        return "an empty file"
    if head.startswith((b"PK\x03\x04", b"\x80")):
        return ""
    for magic, kind in SIGNATURES:
        if head.startswith(magic):
            return kind
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    try:
        json.loads(text)
        return "a JSON file"
    except ValueError:
        return "a text file"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"Checkpoint '{path}' {'is not a regular file' if path.exists() else 'does not exist'}.")
    kind = file_kind(path)
    if kind:
        raise UsageError(f"'{path}' is {kind}, not a checkpoint.")
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
