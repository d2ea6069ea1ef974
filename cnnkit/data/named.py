"""The standard benchmark sets by name, read by torchvision's own dataset classes.

Files live under ``--data-dir`` (default ``$CNNKIT_DATA``, else ``~/.cache/cnnkit/data``) in
torchvision's layout, so a folder torchvision already filled works as it is. Missing files are
downloaded when the network allows (``CNNKIT_OFFLINE=1`` forbids it); otherwise one error names
the files expected and the folder to put them in.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnkit.console import note
from cnnkit.contracts._data import DataRequest
from cnnkit.data.cache import cache_dir
from cnnkit.data.sources import ArraySource
from cnnkit.data.splits import DataSplits, Split, StreamedSplit, split_indices
from cnnkit.errors import CnnkitError, UsageError

DATA_ENV = "CNNKIT_DATA"
OFFLINE_ENV = "CNNKIT_OFFLINE"
DOWNLOAD_TIMEOUT_S = 60
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DIGIT_NAMES = [str(d) for d in range(10)]


@dataclass(frozen=True)
class Known:
    """A dataset torchvision reads: its class, the folder (under the data root) and files it
    needs, and its published statistics (per-channel mean and std of the training images, on
    the 0..1 scale). Help texts are in :mod:`cnnkit.builtins.datasets`."""

    torchvision_class: str
    folder: str
    files: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    by_split: bool = False
    """True when the class takes ``split="train"|"test"`` rather than ``train=True|False``."""
    shape: tuple[int, int, int] = (3, 32, 32)
    """(channels, height, width) of its images as stored."""


KNOWN = {
    "mnist": Known("MNIST", "MNIST/raw", MNIST_FILES, (0.1307,), (0.3081,), shape=(1, 28, 28)),
    "fashion-mnist": Known("FashionMNIST", "FashionMNIST/raw", MNIST_FILES, (0.2860,), (0.3530,), shape=(1, 28, 28)),
    "kmnist": Known("KMNIST", "KMNIST/raw", MNIST_FILES, (0.1918,), (0.3483,), shape=(1, 28, 28)),
    "cifar10": Known(
        "CIFAR10", "cifar-10-batches-py",
        ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch", "batches.meta"),
        (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
    ),
    "cifar100": Known(
        "CIFAR100", "cifar-100-python", ("train", "test", "meta"),
        (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
    ),
    "svhn": Known(
        "SVHN", ".", ("train_32x32.mat", "test_32x32.mat"),
        (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), by_split=True,
    ),
}


def data_root(data_dir: str) -> Path:
    if data_dir:
        return Path(data_dir).expanduser()
    return Path(os.environ.get(DATA_ENV) or cache_dir() / "data")


def missing_files(known: Known, root: Path) -> list[str]:
    return [name for name in known.files if not (root / known.folder / name).exists()]


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "") not in ("", "0")


def missing(name: str, known: Known, root: Path, why: str) -> CnnkitError:
    folder = (root / known.folder).resolve()
    return CnnkitError(
        f"Dataset '{name}' is not in '{folder}' and {why}; put {', '.join(known.files)} there (as torchvision's "
        f"{known.torchvision_class} stores them), or pass --data-dir to the folder that holds them."
    )


def damaged(name: str, known: Known, root: Path, exc: BaseException) -> CnnkitError:
    folder = (root / known.folder).resolve()
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    why = f"{type(exc).__name__}: {lines[-1] if lines else ''}".rstrip(": ")
    return CnnkitError(
        f"Dataset '{name}' in '{folder}' could not be read ({why}); its files are damaged or not "
        f"{known.torchvision_class}'s. Replace them, or delete them to download them again."
    )


def download_failure(exc: BaseException) -> str:
    """One line for why a download failed (torchvision's messages span several lines)."""
    from urllib.error import URLError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, URLError):
            return f"could not be downloaded ({seen.reason})"
        seen = seen.__cause__ or seen.__context__
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return f"could not be downloaded ({text.removeprefix('<urlopen error ').removesuffix('>')})"


@contextlib.contextmanager
def download_timeout(seconds: float):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def open_split(name: str, known: Known, root: Path, train: bool, download: bool):
    """torchvision's dataset object for one split, downloading its files if allowed and needed."""
    if known.by_split and importlib.util.find_spec("scipy") is None:  # torchvision reads SVHN's .mat files with it
        raise UsageError(f"Dataset '{name}' needs scipy to read its .mat files; pip install scipy.")
    import torchvision.datasets

    cls = getattr(torchvision.datasets, known.torchvision_class)
    which = {"split": "train" if train else "test"} if known.by_split else {"train": train}
    try:
        return cls(str(root), download=False, **which)
    except RuntimeError as exc:
        if not str(exc).startswith("Dataset not found"):
            raise damaged(name, known, root, exc) from None
        if not download:
            raise missing(name, known, root, f"downloads are off ({OFFLINE_ENV} is set)") from None
    except (OSError, ValueError, IndexError, EOFError, KeyError) as exc:
        raise damaged(name, known, root, exc) from None
    note(f"downloading {name} into '{root}' ...")
    try:
        with download_timeout(DOWNLOAD_TIMEOUT_S), contextlib.redirect_stdout(io.StringIO()):
            return cls(str(root), download=True, **which)
    except (OSError, RuntimeError, ValueError) as exc:
        raise missing(name, known, root, download_failure(exc)) from None


def as_arrays(dataset) -> tuple[np.ndarray, torch.Tensor]:
    """uint8 ``(N, C, H, W)`` images and int64 labels from torchvision's object."""
    images = dataset.data
    images = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if images.ndim == 3:  # MNIST family: (N, H, W)
        images = images[:, None]
    elif images.shape[-1] == 3:  # CIFAR: (N, H, W, C)
        images = images.transpose(0, 3, 1, 2)
    labels = getattr(dataset, "targets", None)
    if labels is None:
        labels = dataset.labels  # SVHN
    return np.ascontiguousarray(images, dtype=np.uint8), torch.as_tensor(np.asarray(labels), dtype=torch.long)


def part(images: np.ndarray, labels: torch.Tensor, index: torch.Tensor | None, request: DataRequest, name: str):
    """In memory when stored at the model's shape; else streamed through per-sample resizing."""
    if index is None:
        index = torch.arange(len(labels))
    shape = (request.channels, *request.image_size)
    if images.shape[1:] == shape and request.crop_fraction == 1:
        return Split(torch.from_numpy(images[index.numpy()]), labels[index])
    source = ArraySource(images, labels, request.image_size, request.channels, f"{name} image",
                         request.crop_fraction, request.interpolation, request.as_weights)
    return StreamedSplit(source, index)


def statistics(known: Known, channels: int) -> tuple[list[float] | None, list[float] | None]:
    """The published statistics, repeated for grayscale data fed to a colour model; None (cnnkit
    measures them) for colour data turned grayscale."""
    if len(known.mean) == channels:
        return list(known.mean), list(known.std)
    if len(known.mean) == 1:
        return list(known.mean) * channels, list(known.std) * channels
    return None, None


@dataclass
class Arrays:
    """A named dataset as stored: uint8 ``(N, C, H, W)`` images and labels of its training and test
    sets, and which training images cnnkit trains on and which it holds out for validation."""

    classes: list[str]
    train: tuple[np.ndarray, torch.Tensor]
    test: tuple[np.ndarray, torch.Tensor]
    train_idx: torch.Tensor
    val_idx: torch.Tensor


def read_known(name: str, request: DataRequest) -> Arrays:
    known = KNOWN[name]
    root = data_root(request.data_dir)
    download = request.download and not offline()
    train_set = open_split(name, known, root, True, download)
    test_set = open_split(name, known, root, False, download)
    train_images, train_labels = as_arrays(train_set)
    test_images, test_labels = as_arrays(test_set)
    classes = [str(c) for c in getattr(train_set, "classes", DIGIT_NAMES)]
    for images, labels in ((train_images, train_labels), (test_images, test_labels)):
        if len(images) != len(labels) or (len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < len(classes)):
            problem = ValueError(f"{len(images)} images, {len(labels)} labels from {int(labels.min())} to {int(labels.max())} "
                                 f"for {len(classes)} classes")
            raise damaged(name, known, root, problem)
    if not 0.0 < request.val_split < 1.0:
        raise UsageError(f"'{name}' has no validation split, so --val-split must be between 0 and 1 (got {request.val_split}).")
    train_idx, val_idx = split_indices(train_labels, request.val_split, torch.Generator().manual_seed(request.seed))
    return Arrays(classes, (train_images, train_labels), (test_images, test_labels), train_idx, val_idx)


def load_named(name: str, request: DataRequest) -> DataSplits:
    arrays = read_known(name, request)
    (train_images, train_labels), (test_images, test_labels) = arrays.train, arrays.test
    mean, std = statistics(KNOWN[name], request.channels)
    channels, height, width = (int(d) for d in train_images.shape[1:])
    return DataSplits(
        part(train_images, train_labels, arrays.train_idx, request, name),
        part(train_images, train_labels, arrays.val_idx, request, name),
        part(test_images, test_labels, None, request, name),
        arrays.classes, name, native=(channels, height, width), mean=mean, std=std,
    )
