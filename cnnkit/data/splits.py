"""The two forms a split takes, and the dataset a factory returns.

- :class:`Split`: uint8 images ``(N, C, H, W)`` held in memory (on the training device once
  training starts), indexed batch by batch. The fastest path, for data that fits.
- :class:`StreamedSplit`: samples of an :class:`~cnnkit.contracts.ImageSource` (files, or
  arrays at another size) read per batch through a ``DataLoader`` (:mod:`cnnkit.data.streaming`).
  For data that does not fit.

Both serve ``batches(index_lists, device)``, so the training loop never knows which it has, and
both read each sample with the same function, so they give the same bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import torch

from cnnkit.data.streaming import read_all, stream

if TYPE_CHECKING:
    from cnnkit.data.sources import AnySource

Index = torch.Tensor | slice
SampleTransform = Callable[[torch.Tensor, int], torch.Tensor]
"""A per-sample augmentation: (uint8 image, seed) -> uint8 image."""


@dataclass
class Split:
    """Images as uint8 ``(N, C, H, W)`` and labels as int64 ``(N,)``, on any device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError("labels must have one entry per image")
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def nbytes(self) -> int:
        return self.images.numel()

    def to(self, device: torch.device) -> Split:
        return Split(self.images.to(device), self.labels.to(device))

    def subset(self, index: torch.Tensor) -> Split:
        """The images and labels picked by ``index`` (a boolean mask or integer indices)."""
        return Split(self.images[index], self.labels[index])

    def batches(self, indices: Iterable[Index], device: torch.device, workers: int = 0,
                augment: SampleTransform | None = None, seeds: Iterable[torch.Tensor] | None = None,
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(images, labels)`` for each index tensor or slice, on this split's device; with
        ``augment``, each image goes through it with its seed from ``seeds`` (one tensor per batch)."""
        for index, batch_seeds in zip(indices, seeds if seeds is not None else itertools.repeat(None)):
            if isinstance(index, torch.Tensor):
                index = index.to(self.images.device, non_blocking=True)
            images = self.images[index]
            if augment is not None:
                if batch_seeds is None:
                    raise ValueError("augment needs seeds: one tensor per batch")
                images = torch.stack([augment(image, int(seed)) for image, seed in zip(images, batch_seeds.tolist())])
            yield images, self.labels[index]


@dataclass
class StreamedSplit:
    """The samples ``indices`` of ``source``, read when a batch asks for them."""

    source: AnySource
    """An :class:`~cnnkit.contracts.ImageSource`, or (for augmentations that crop from the
    original picture) cnnkit's :class:`~cnnkit.data.sources.WholeFiles`."""
    indices: torch.Tensor

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def labels(self) -> torch.Tensor:
        return self.source.labels[self.indices]

    @property
    def fixed_size(self) -> bool:
        """Whether every sample has one shape (so the split can be read into one tensor)."""
        return self.source.sample_shape is not None

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of every sample; only a split of fixed size has one."""
        shape = self.source.sample_shape
        if shape is None:
            raise ValueError("the samples of this split have no one shape (whole pictures, each at its own size)")
        return shape

    @property
    def nbytes(self) -> int:
        channels, height, width = self.sample_shape
        return len(self) * channels * height * width

    def subset(self, index: torch.Tensor) -> StreamedSplit:
        return StreamedSplit(self.source, self.indices[index])

    def batches(self, indices: Iterable[Index], device: torch.device, workers: int = 0,
                augment: SampleTransform | None = None, seeds: Iterable[torch.Tensor] | None = None,
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(images, labels)`` for each batch of positions in this split, read on ``device``
        (see :func:`cnnkit.data.streaming.stream`)."""
        yield from stream(self.source, [self.indices[index] for index in indices], device, workers, augment, seeds)

    def materialize(self, workers: int = 0) -> Split:
        """Every sample read into memory (samples that fail to read are dropped, with a warning)."""
        return Split(*read_all(self.source, self.indices, self.sample_shape, workers))


AnySplit = Split | StreamedSplit


@dataclass
class DataSplits:
    """What a dataset factory returns: train, validation and (optionally) test splits."""

    train: AnySplit
    val: AnySplit
    test: AnySplit | None
    classes: list[str]
    source: str
    native: tuple[int, int, int] | None = None
    """(channels, height, width) of the images as stored (the most common), before any resizing;
    cnnkit notes when they are adapted to the model. None for data served at any size by design
    (the shipped digits are always upscaled from 8x8)."""
    mean: list[float] | None = None
    """Per-channel mean on the 0..1 scale, when the dataset has published ones; else computed."""
    std: list[float] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(file, reason) for every file left out because it could not be read."""

    def splits(self) -> dict[str, AnySplit]:
        parts = {"train": self.train, "val": self.val}
        return parts if self.test is None else {**parts, "test": self.test}

    def to(self, device: torch.device) -> DataSplits:
        """In-memory splits moved to ``device`` (streamed ones are read there batch by batch)."""
        moved = {name: split.to(device) if isinstance(split, Split) else split for name, split in self.splits().items()}
        return self.replace_splits(moved)

    def replace_splits(self, parts: dict[str, AnySplit]) -> DataSplits:
        return replace(self, train=parts["train"], val=parts["val"], test=parts.get("test"))


STATS_IMAGES = 2000
"""Training images (a seeded sample) that per-channel mean and std are measured on."""


def channel_stats(split: AnySplit, seed: int, workers: int = 0) -> tuple[list[float], list[float]]:
    """Per-channel mean and std on the 0..1 scale, over a seeded sample of at most
    :data:`STATS_IMAGES` images (all of them when there are fewer), read in a fixed order so
    either form of the split gives the same figures. Measured on the CPU, in float64."""
    n = len(split)
    chosen = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:STATS_IMAGES].sort().values
    total: torch.Tensor | None = None
    squares: torch.Tensor | None = None
    count = 0
    for images, _ in split.batches(chosen.split(256), torch.device("cpu"), workers):
        x = images.cpu().to(torch.float64).div_(255)
        sums, sq = x.sum(dim=(0, 2, 3)), x.square().sum(dim=(0, 2, 3))
        total, squares = (sums, sq) if total is None or squares is None else (total + sums, squares + sq)
        count += x.shape[0] * x.shape[2] * x.shape[3]
    if total is None or squares is None:
        raise ValueError("channel statistics need at least one image")
    mean = total / count
    var = (squares - count * mean.square()) / max(count - 1, 1)
    return mean.tolist(), var.clamp_min(0).sqrt().clamp_min(1e-6).tolist()


def split_indices(labels: torch.Tensor, val_fraction: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A stratified random split of ``range(len(labels))`` into train and validation indices."""
    train_parts, val_parts = [], []
    for label in labels.unique():
        idx = torch.nonzero(labels == label).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_val = int(round(len(idx) * val_fraction))
        n_val = min(max(n_val, 1), len(idx) - 1) if len(idx) > 1 else 0
        val_parts.append(idx[:n_val])
        train_parts.append(idx[n_val:])
    return torch.cat(train_parts).sort().values, torch.cat(val_parts).sort().values
