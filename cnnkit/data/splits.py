"""The in-memory form every dataset factory returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch


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

    def to(self, device: torch.device) -> Split:
        return Split(self.images.to(device), self.labels.to(device))

    def subset(self, index: torch.Tensor) -> Split:
        """The images and labels picked by ``index`` (a boolean mask or integer indices)."""
        return Split(self.images[index], self.labels[index])


@dataclass
class DataSplits:
    train: Split
    val: Split
    test: Split | None
    classes: list[str]
    source: str
    native: tuple[int, int, int] | None = None
    """(channels, height, width) of the images as stored (the most common), before any resizing;
    cnnkit notes when they are adapted to the model. None for data served at any size by design
    (the shipped digits are always upscaled from 8x8)."""

    def to(self, device: torch.device) -> DataSplits:
        test = self.test.to(device) if self.test is not None else None
        return DataSplits(self.train.to(device), self.val.to(device), test, self.classes, self.source, self.native)

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the training images, on the 0..1 scale."""
        x = self.train.images.float().div_(255)
        mean = x.mean(dim=(0, 2, 3))
        std = x.std(dim=(0, 2, 3)).clamp_min(1e-6)
        return mean.tolist(), std.tolist()


def split_indices(labels: torch.Tensor, val_fraction: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A stratified random split of ``range(len(labels))`` into train and validation indices."""
    train_parts, val_parts = [], []
    for label in labels.unique():
        idx = torch.nonzero(labels == label).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_val = int(round(len(idx) * val_fraction))
        if len(idx) > 1:
            n_val = min(max(n_val, 1), len(idx) - 1)
        else:
            n_val = 0
        val_parts.append(idx[:n_val])
        train_parts.append(idx[n_val:])
    return torch.cat(train_parts).sort().values, torch.cat(val_parts).sort().values
