"""What a dataset plugin needs to read image files as cnnkit's own folders are read: the file
extensions folders take, a probe that tells a usable image from a damaged one without decoding
it, a streamed split over files (decoded, converted and resized on every read exactly as folder
images are, and read into memory by cnnkit when they fit), the seeded stratified validation split,
and cnnkit's one-line messages. ``cnnkit.contracts`` exports these names; plugins import them
from there."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from cnnkit.console import note, warn
from cnnkit.contracts._data import DataRequest
from cnnkit.data.folder import IMAGE_EXTENSIONS
from cnnkit.data.images import forget_rescaled, probe, stored_channels
from cnnkit.data.sources import FileSource
from cnnkit.data.splits import StreamedSplit, split_indices
from cnnkit.errors import CnnkitError, UsageError


def probe_image(path: str | Path) -> tuple[int, int, int]:
    """(channels, height, width) of the image file at ``path`` as stored (channels 1 or 3), after
    the check folders make of every file (a PNG's checksums, a JPEG's end marker, other formats
    decoded); raises ``UnreadableImage`` with the reason, for a warning, when it cannot be used."""
    mode, width, height = probe(Path(path))
    return stored_channels(mode), height, width


def image_files(paths: Sequence[str | Path], labels: Sequence[int] | torch.Tensor, request: DataRequest) -> StreamedSplit:
    """A split streaming ``paths`` with their class indices, read as ``request`` asks (the model's
    size and channels, the evaluation crop, the pretrained weights' way): the same reader folders
    use, so cnnkit may read it into memory, crop the original pictures for augmentations that want
    them, and read validation images at the training crop's scale."""
    label_tensor = labels.long() if isinstance(labels, torch.Tensor) else torch.tensor(list(labels), dtype=torch.long)
    if len(paths) != len(label_tensor):
        raise ValueError(f"{len(paths)} paths but {len(label_tensor)} labels")
    source = FileSource([Path(p) for p in paths], label_tensor, request.image_size, request.channels,
                        request.crop_fraction, request.interpolation, request.as_weights)
    return StreamedSplit(source, torch.arange(len(label_tensor)))


def stratified_split(labels: torch.Tensor, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted (train, validation) indices of ``labels``: ``val_fraction`` of every class, at least
    one image for validation and one for training from each class with two or more, drawn with
    ``seed``; the split folders without a ``val/`` folder get for the same labels and seed."""
    return split_indices(labels, val_fraction, torch.Generator().manual_seed(seed))


def new_dataset() -> None:
    """Start reading a new dataset: warnings about files already named while reading another
    (32-bit images rescaled by their own maximum) may name them again."""
    forget_rescaled()


__all__ = ["IMAGE_EXTENSIONS", "CnnkitError", "UsageError", "image_files", "new_dataset", "note", "probe_image",
           "stratified_split", "warn"]
