"""Where a streamed split's samples come from: files on disk, or arrays stored at another size.

An image source (the :class:`cnnkit.contracts.ImageSource` protocol) has ``labels``, a
``sample_shape`` (C, H, W) every read returns, ``read(i)`` giving sample ``i`` as uint8, and
``name(i)`` for messages. :class:`FileSource` and :class:`ArraySource` are image sources;
:class:`WholeFiles` is not (its pictures have no one shape): it serves the augmentations that
crop from the original picture, and is only ever streamed. Sources are pickled to
``DataLoader`` workers, so they hold plain data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cnnkit.contracts._data import ImageSource
from cnnkit.data.images import decode, fit_array


class FileSource:
    """Image files, decoded and fitted to ``(channels, *size)`` on every read; ``as_weights``
    reads them as pretrained weights' transforms do (see :func:`cnnkit.data.images.decode`)."""

    def __init__(self, paths: list[Path], labels: torch.Tensor, size: tuple[int, int], channels: int,
                 crop: float = 1.0, resample: str = "bilinear", as_weights: bool = False):
        self.paths = [str(p) for p in paths]
        self.labels = labels.long()
        height, width = size
        self.size, self.channels = (height, width), channels
        self.crop, self.resample, self.as_weights = crop, resample, as_weights

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (self.channels, *self.size)

    def originals(self) -> WholeFiles:
        return WholeFiles(self.paths, self.labels, self.channels)

    def read(self, index: int) -> np.ndarray:
        return decode(Path(self.paths[index]), self.size, self.channels, self.crop, self.resample, self.as_weights)

    def name(self, index: int) -> str:
        return self.paths[index]


class WholeFiles:
    """Image files decoded whole, each at its own size (``sample_shape`` None), converted to
    ``channels``: the original pictures, for augmentations that crop from them."""

    def __init__(self, paths: list[str], labels: torch.Tensor, channels: int):
        self.paths, self.labels, self.channels = paths, labels, channels

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def sample_shape(self) -> None:
        return None

    def read(self, index: int) -> np.ndarray:
        return decode(Path(self.paths[index]), None, self.channels)

    def name(self, index: int) -> str:
        return self.paths[index]


class ArraySource:
    """uint8 images stored as ``(N, C, H, W)`` (C is 1 or 3), fitted to ``(channels, *size)`` on
    every read: how a dataset kept at its own size (MNIST's 28x28) feeds a model of another."""

    def __init__(self, images: np.ndarray, labels: torch.Tensor, size: tuple[int, int], channels: int,
                 label: str = "image", crop: float = 1.0, resample: str = "bilinear", as_weights: bool = False):
        self.images = images
        self.labels = labels.long()
        height, width = size
        self.size, self.channels = (height, width), channels
        self.label = label
        self.crop, self.resample, self.as_weights = crop, resample, as_weights

    def __len__(self) -> int:
        return len(self.images)

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (self.channels, *self.size)

    def originals(self) -> ArraySource:
        """The images at the size they are stored in (all one)."""
        stored = (int(self.images.shape[2]), int(self.images.shape[3]))
        return ArraySource(self.images, self.labels, stored, self.channels, self.label, self.crop, self.resample, self.as_weights)

    def read(self, index: int) -> np.ndarray:
        return fit_array(self.images[index], self.size, self.channels, self.crop, self.resample, self.as_weights)

    def name(self, index: int) -> str:
        return f"{self.label} {index}"


AnySource = ImageSource | WholeFiles
"""What a streamed split reads: an image source, or cnnkit's own whole pictures."""
