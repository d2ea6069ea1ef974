"""Where a streamed split's samples come from: files on disk, or arrays stored at another size.

An image source (the :class:`cnnkit.contracts.ImageSource` protocol) has ``labels``, a
``sample_shape`` (C, H, W) every read returns, ``read(i)`` giving sample ``i`` as uint8, and
``name(i)`` for messages. Sources are pickled to ``DataLoader`` workers, so they hold plain data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cnnkit.data.images import decode, fit_array


class FileSource:
    """Image files, decoded and fitted to ``(channels, *size)`` on every read (``size`` None: at
    their own size, for augmentations that want the original picture); ``as_weights`` reads them
    as pretrained weights' transforms do (see :func:`cnnkit.data.images.decode`)."""

    def __init__(self, paths: list[Path], labels: torch.Tensor, size: tuple[int, int] | None, channels: int,
                 crop: float = 1.0, resample: str = "bilinear", as_weights: bool = False):
        self.paths = [str(p) for p in paths]
        self.labels = labels.long()
        self.size, self.channels = (tuple(size) if size is not None else None), channels
        self.crop, self.resample, self.as_weights = crop, resample, as_weights

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def sample_shape(self) -> tuple[int, int, int] | None:
        return (self.channels, *self.size) if self.size is not None else None

    def originals(self) -> FileSource:
        return FileSource([Path(p) for p in self.paths], self.labels, None, self.channels)

    def read(self, index: int) -> np.ndarray:
        return decode(Path(self.paths[index]), self.size, self.channels, self.crop, self.resample, self.as_weights)

    def name(self, index: int) -> str:
        return self.paths[index]


class ArraySource:
    """uint8 images stored as ``(N, C, H, W)`` (C is 1 or 3), fitted to ``(channels, *size)`` on
    every read: how a dataset kept at its own size (MNIST's 28x28) feeds a model of another."""

    def __init__(self, images: np.ndarray, labels: torch.Tensor, size: tuple[int, int] | None, channels: int,
                 label: str = "image", crop: float = 1.0, resample: str = "bilinear", as_weights: bool = False):
        self.images = images
        self.labels = labels.long()
        self.size, self.channels = (tuple(size) if size is not None else None), channels
        self.label = label
        self.crop, self.resample, self.as_weights = crop, resample, as_weights

    def __len__(self) -> int:
        return len(self.images)

    @property
    def sample_shape(self) -> tuple[int, int, int] | None:
        return (self.channels, *self.size) if self.size is not None else None

    def originals(self) -> ArraySource:
        return ArraySource(self.images, self.labels, None, self.channels, self.label, self.crop, self.resample, self.as_weights)

    def read(self, index: int) -> np.ndarray:
        return fit_array(self.images[index], self.size, self.channels, self.crop, self.resample, self.as_weights)

    def name(self, index: int) -> str:
        return f"{self.label} {index}"
