"""Image folders in torchvision's ImageFolder layout, loaded into uint8 tensors.

Accepted layouts::

    ROOT/train/<class>/*.png  +  ROOT/val/<class>/*.png  [+ ROOT/test/<class>/*.png]
    ROOT/train/<class>/*.png  (validation split off by --val-split)
    ROOT/<class>/*.png        (validation split off by --val-split)

Split folders are matched without regard to case and by their common names (``training``;
``valid``, ``validation``, ``dev``; ``testing``). A class folder without images is an error, and a
folder of cnnkit runs (an ``--out`` folder inside the data) is skipped with a note.

Images are converted to the channels the model wants (grayscale or RGB), resized so the shorter
side matches the model's input and centre-cropped, as torchvision's evaluation transforms do;
16-bit, 32-bit and floating-point images are scaled to 8 bits.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from cnnkit.console import note
from cnnkit.data.splits import DataSplits, Split, split_indices
from cnnkit.errors import UsageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
SPLIT_NAMES = {"train": ("train", "training"), "val": ("val", "valid", "validation", "dev"), "test": ("test", "testing")}
MAX_PIXELS = 64_000_000
"""Largest image cnnkit decodes (a 64-megapixel RGB image takes about 190 MB)."""
LAYOUT_HINT = (
    "expected ROOT/train/<class>/<images> and ROOT/val/<class>/<images>, "
    "or ROOT/<class>/<images> split by --val-split"
)


def is_run_directory(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "last.pt").is_file()


def images_in(folder: Path) -> tuple[list[Path], list[Path]]:
    """The images below ``folder``, sorted, and the cnnkit run directories found there (whose
    files are not data). Hidden files and folders (``.ipynb_checkpoints``, ``._x.png``) are skipped;
    a link to nothing is an error naming it."""
    images, runs = [], []
    for top, dirs, files in os.walk(folder, followlinks=True):
        here = Path(top)
        if is_run_directory(here):
            runs.append(here)
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = here / name
            if name.startswith(".") or path.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            if not path.exists():
                raise UsageError(f"Image '{path}' is a link to nothing; fix or remove it.")
            images.append(path)
    return images, runs


def visible_folders(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def find_classes(directory: Path) -> list[str]:
    """Class folders: every visible subfolder but cnnkit's own output (skipped with a note)."""
    classes = []
    for child in visible_folders(directory):
        images, runs = images_in(child)
        if runs and not images:
            note(f"skipping '{child}': it holds cnnkit runs, not a class of images.")
            continue
        if runs:
            note(f"ignoring the cnnkit runs inside '{child}' ({', '.join(str(r) for r in runs)}).")
        classes.append(child.name)
    return classes


def list_samples(directory: Path, classes: list[str]) -> list[tuple[Path, int]]:
    kinds = ", ".join(IMAGE_EXTENSIONS)
    per_class = [images_in(directory / name)[0] for name in classes]
    if not any(per_class):
        raise UsageError(f"No images found in the class folders of '{directory}' (looked for {kinds}); {LAYOUT_HINT}.")
    for name, found in zip(classes, per_class):
        if not found:
            raise UsageError(f"Class folder '{directory / name}' has no images ({kinds}); add some or remove the folder.")
    return [(path, index) for index, found in enumerate(per_class) for path in found]


def find_splits(root: Path) -> dict[str, Path]:
    """The split folders of ``root``, matched without regard to case and by their common names
    (``Train/``, ``valid/``, ``validation/``, ``Test/``...); a note names any unusual one."""
    found: dict[str, Path] = {}
    for child in visible_folders(root):
        for split, names in SPLIT_NAMES.items():
            if child.name.lower() in names:
                if split in found:
                    raise UsageError(f"'{root}' has two {split} folders, '{found[split].name}' and '{child.name}'; keep one.")
                found[split] = child
                if child.name != split:
                    note(f"using '{child}' as the {split} split.")
    if found and "train" not in found:
        names = ", ".join(f"'{path.name}'" for path in found.values())
        raise UsageError(f"'{root}' has {names} but no train folder; add ROOT/train/<class>/ (or drop the split folders).")
    others = [p.name for p in visible_folders(root) if p not in found.values() and images_in(p)[0]] if found else []
    if others:
        raise UsageError(
            f"'{root}' has split folders ({', '.join(p.name for p in found.values())}) and other folders of images "
            f"({', '.join(others)}); move those into the splits or out of '{root}'."
        )
    return found


GRAY_MODES = ("1", "L", "LA", "I", "F")


def read_image(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    return read_image_and_shape(path, size, channels)[0]


def read_image_and_shape(path: Path, size: tuple[int, int], channels: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    """One image as uint8 ``(C, H, W)``: deeper pixels scaled to 8 bits, the centre region of the
    target's aspect ratio cut out and resized to ``size`` in one step, so memory never exceeds the
    decoded image (bounded by :data:`MAX_PIXELS`). Also its stored (channels, height, width)."""
    from PIL import Image

    height, width = size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise UsageError(
                        f"Image '{path}' is {img.width}x{img.height} pixels, more than cnnkit reads "
                        f"({MAX_PIXELS // 1_000_000} megapixels); shrink it first."
                    )
                stored = (1 if img.mode in GRAY_MODES or img.mode.startswith("I;16") else 3, img.height, img.width)
                img.draft("L" if channels == 1 else "RGB", (width, height))  # JPEG: decode at a smaller scale
                img = to_8_bits(img, path).convert("L" if channels == 1 else "RGB")
                img = img.resize((width, height), Image.Resampling.BILINEAR, box=centre_box(img.size, size))
                array = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UsageError(f"Cannot read image '{path}': {exc}") from None
    return (array[None] if array.ndim == 2 else array.transpose(2, 0, 1)), stored


def centre_box(source: tuple[int, int], size: tuple[int, int]) -> tuple[float, float, float, float]:
    """The largest centred region of ``source`` (width, height) with the aspect ratio of ``size``
    (height, width): what resizing the shorter side and centre-cropping would keep."""
    source_w, source_h = source
    height, width = size
    scale = min(source_w / width, source_h / height)
    box_w, box_h = width * scale, height * scale
    left, top = (source_w - box_w) / 2, (source_h - box_h) / 2
    return (left, top, left + box_w, top + box_h)


def to_8_bits(img, path: Path):
    """16-bit, 32-bit integer and floating-point images scaled to 8 bits by their nominal range:
    16-bit by 65535; 32-bit integers by 65535 when no value exceeds it (16-bit PNGs read by older
    Pillow), else by 2**32 - 1; floats from 0..1 or 0..255. Other ranges are refused."""
    from PIL import Image

    if img.mode not in ("I", "F") and not img.mode.startswith("I;16"):
        return img
    pixels = np.asarray(img).astype(np.float64)
    low, high = float(pixels.min()), float(pixels.max())
    if img.mode == "F":
        if not (np.isfinite(pixels).all() and low >= 0 and high <= 255):
            raise UsageError(
                f"Image '{path}' holds floating-point values from {low:g} to {high:g}; cnnkit reads 0..1 or "
                "0..255. Convert it to 8-bit first."
            )
        full = 1.0 if high <= 1.0 else 255.0
    elif low < 0:
        raise UsageError(f"Image '{path}' holds negative pixel values (down to {low:g}); convert it to 8-bit first.")
    else:
        full = 65535.0 if img.mode.startswith("I;16") or high <= 65535 else 2.0**32 - 1
    return Image.fromarray(np.round(pixels * (255.0 / full)).astype(np.uint8), "L")


def load_split(directory: Path, classes: list[str], size: tuple[int, int], channels: int,
               shapes: Counter | None = None) -> Split:
    """The images of ``directory``; their stored shapes are counted into ``shapes``."""
    samples = list_samples(directory, classes)
    arrays = []
    for path, _ in samples:
        array, stored = read_image_and_shape(path, size, channels)
        arrays.append(array)
        if shapes is not None:
            shapes[stored] += 1
    labels = torch.tensor([label for _, label in samples], dtype=torch.long)
    return Split(torch.from_numpy(np.stack(arrays)), labels)


def checked_classes(directory: Path) -> list[str]:
    classes = find_classes(directory)
    if len(classes) < 2:
        found = f"1 class folder ('{classes[0]}')" if classes else "no class folders"
        raise UsageError(f"'{directory}' has {found}; a classifier needs at least 2: {LAYOUT_HINT}.")
    return classes


def checked_like(directory: Path, classes: list[str], train_dir: Path) -> Path:
    found = find_classes(directory)
    if found != classes:
        raise UsageError(f"Class folders of '{directory}' differ from those of '{train_dir}': {found} vs {classes}.")
    return directory


def load_folder(
    root: str | Path, *, image_size: tuple[int, int], channels: int, val_split: float, seed: int
) -> DataSplits:
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise UsageError(f"Data folder '{root}' {what}; {LAYOUT_HINT}.")
    splits = find_splits(root)
    train_dir = splits.get("train", root)
    classes = checked_classes(train_dir)
    shapes: Counter = Counter()
    train = load_split(train_dir, classes, image_size, channels, shapes)

    if "val" in splits:
        val = load_split(checked_like(splits["val"], classes, train_dir), classes, image_size, channels)
    else:
        if not 0.0 < val_split < 1.0:
            raise UsageError(f"'{root}' has no val/ folder, so --val-split must be between 0 and 1 (got {val_split}).")
        generator = torch.Generator().manual_seed(seed)
        train_idx, val_idx = split_indices(train.labels, val_split, generator)
        train, val = train.subset(train_idx), train.subset(val_idx)
        if len(val) == 0:
            raise UsageError(f"'{root}' has too few images to split off a validation set; add images or a val/ folder.")

    test = None
    if "test" in splits:
        test = load_split(checked_like(splits["test"], classes, train_dir), classes, image_size, channels)
    return DataSplits(train, val, test, classes, str(root), native=shapes.most_common(1)[0][0])
