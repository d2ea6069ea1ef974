"""A checkpoint turned back into a model ready for inference: the architecture rebuilt by its
registered name and arguments, the weights loaded strictly, and how its images must be read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnkit import __version__
from cnnkit.errors import CnnkitError, UsageError

REQUIRED = ("model", "classes", "input_size", "normalization", "state_dict")


@dataclass
class Trained:
    model: nn.Module
    classes: list[str]
    input_size: tuple[int, int, int]
    mean: list[float]
    std: list[float]
    crop_fraction: float
    interpolation: str
    saved: dict

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(N, C, H, W)`` to the model's normalised float input."""
        mean = torch.tensor(self.mean, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, -1, 1, 1)
        return (images.float() / 255 - mean) / std


def checkpoint_file(path: Path) -> Path:
    """The checkpoint a user named: ``best.pt`` of a run directory, or the file itself; a path that
    is missing or a file that is plainly something else (a run's config.json) is a usage error."""
    from cnnkit.engine.checkpoint import file_kind

    if path.is_dir():
        if not (path / "best.pt").is_file():
            raise UsageError(f"'{path}' has no best.pt (a run directory holds one once an epoch has finished); "
                             "pass a checkpoint file or a finished run.")
        return path / "best.pt"
    if not path.exists():
        raise UsageError(f"'{path}' does not exist; pass a run directory or its best.pt.")
    if not path.is_file():
        raise UsageError(f"'{path}' is not a regular file; pass a run directory or its best.pt.")
    kind = file_kind(path)
    if kind:
        raise UsageError(f"'{path}' is {kind}, not a checkpoint; pass the run directory or best.pt.")
    return path


def load_trained(path: str | Path) -> Trained:
    """The model of ``path`` (read with ``weights_only=True``), or one line saying what is wrong."""
    from cnnkit.engine.checkpoint import load_checkpoint, state_mismatch
    from cnnkit.plugins import registry
    from cnnkit.transfer.surgery import as_recorded

    path = checkpoint_file(Path(path))
    saved = load_checkpoint(path)
    made_by = saved.get("cnnkit_version", "an unknown version")
    missing = [key for key in REQUIRED if key not in saved]
    if missing:
        raise CnnkitError(f"'{path}' lacks {', '.join(missing)}: it was written by cnnkit {made_by} (this is {__version__}) "
                          "in a form this version cannot use; retrain or use that version.")
    name, kwargs = saved["model"]["name"], dict(saved["model"]["kwargs"])
    entry = registry("models").get(name)
    try:
        model = as_recorded(entry.create(**kwargs), saved)
    except Exception as exc:
        cause = exc.__cause__ if isinstance(exc, CnnkitError) and exc.__cause__ is not None else exc  # the registry's wrapping
        raise CnnkitError(f"Cannot rebuild model '{name}' of '{path}' with {kwargs}: {type(cause).__name__}: {cause}") from None
    own, state = model.state_dict(), saved["state_dict"]
    mismatch = state_mismatch(own, state)
    if mismatch:
        raise CnnkitError(f"The weights in '{path}' do not fit model '{name}' as this cnnkit builds it ({mismatch}); "
                          f"it was written by cnnkit {made_by} (this is {__version__}).")
    model.load_state_dict(state)
    model.eval()
    read = saved.get("preprocessing", {})
    classes = [str(c) for c in saved["classes"]]
    if len(set(classes)) != len(classes):
        raise CnnkitError(f"'{path}' lists a class name twice ({classes}); it is damaged.")
    try:
        with torch.no_grad():
            outputs = model(torch.zeros(1, *saved["input_size"])).shape[-1]
    except Exception as exc:
        raise CnnkitError(f"Model '{name}' of '{path}' cannot take its recorded input size {saved['input_size']} "
                          f"({type(exc).__name__}); the checkpoint is damaged.") from None
    if outputs != len(classes):
        raise CnnkitError(f"'{path}' lists {len(classes)} classes but its model gives {outputs} scores; the checkpoint is damaged.")
    return Trained(model, classes, tuple(saved["input_size"]), list(saved["normalization"]["mean"]),
                   list(saved["normalization"]["std"]), float(read.get("crop_fraction", 1.0)),
                   str(read.get("interpolation", "bilinear")), saved)
