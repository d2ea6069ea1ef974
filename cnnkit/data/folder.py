"""Image folders in torchvision's ImageFolder layout, loaded into uint8 tensors.

Accepted layouts::

    ROOT/train/<class>/*.png  +  ROOT/val/<class>/*.png  [+ ROOT/test/<class>/*.png]
    ROOT/train/<class>/*.png  (validation split off by --val-split)
    ROOT/<class>/*.png        (validation split off by --val-split)

Images are converted to the channels the model wants (grayscale or RGB), resized so the shorter
side matches the model's input and centre-cropped, as torchvision's evaluation transforms do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cnnkit.data.splits import DataSplits, Split, split_indices
from cnnkit.errors import UsageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
LAYOUT_HINT = (
    "expected ROOT/train/<class>/<images> and ROOT/val/<class>/<images>, "
    "or ROOT/<class>/<images> split by --val-split"
)


def find_classes(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def list_samples(directory: Path, classes: list[str]) -> list[tuple[Path, int]]:
    samples = []
    for index, name in enumerate(classes):
        for path in sorted((directory / name).rglob("*")):
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                samples.append((path, index))
    return samples


def read_image(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            height, width = size
            scale = max(height / img.height, width / img.width)
            resized = (max(width, round(img.width * scale)), max(height, round(img.height * scale)))
            img = img.resize(resized, Image.Resampling.BILINEAR)
            left, top = (resized[0] - width) // 2, (resized[1] - height) // 2
            img = img.crop((left, top, left + width, top + height))
            array = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise UsageError(f"Cannot read image '{path}': {exc}") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def load_split(directory: Path, classes: list[str], size: tuple[int, int], channels: int) -> Split:
    samples = list_samples(directory, classes)
    if not samples:
        kinds = ", ".join(IMAGE_EXTENSIONS)
        raise UsageError(f"No images found in the class folders of '{directory}' (looked for {kinds}); {LAYOUT_HINT}.")
    images = np.stack([read_image(path, size, channels) for path, _ in samples])
    labels = torch.tensor([label for _, label in samples], dtype=torch.long)
    return Split(torch.from_numpy(images), labels)


def checked_classes(directory: Path) -> list[str]:
    classes = find_classes(directory)
    if len(classes) < 2:
        found = f"1 class folder ('{classes[0]}')" if classes else "no class folders"
        raise UsageError(f"'{directory}' has {found}; a classifier needs at least 2: {LAYOUT_HINT}.")
    return classes


def load_folder(
    root: str | Path, *, image_size: tuple[int, int], channels: int, val_split: float, seed: int
) -> DataSplits:
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise UsageError(f"Data folder '{root}' {what}; {LAYOUT_HINT}.")
    train_dir = root / "train" if (root / "train").is_dir() else root
    classes = checked_classes(train_dir)
    train = load_split(train_dir, classes, image_size, channels)

    val_dir = root / "val" if train_dir != root else None
    if val_dir is not None and val_dir.is_dir():
        if find_classes(val_dir) != classes:
            raise UsageError(f"Class folders of '{val_dir}' differ from those of '{train_dir}': {find_classes(val_dir)} vs {classes}.")
        val = load_split(val_dir, classes, image_size, channels)
    else:
        if not 0.0 < val_split < 1.0:
            raise UsageError(f"'{root}' has no val/ folder, so --val-split must be between 0 and 1 (got {val_split}).")
        generator = torch.Generator().manual_seed(seed)
        train_idx, val_idx = split_indices(train.labels, val_split, generator)
        train, val = train.subset(train_idx), train.subset(val_idx)
        if len(val) == 0:
            raise UsageError(f"'{root}' has too few images to split off a validation set; add images or a val/ folder.")

    test = None
    if train_dir != root and (root / "test").is_dir():
        if find_classes(root / "test") != classes:
            raise UsageError(f"Class folders of '{root / 'test'}' differ from those of '{train_dir}'.")
        test = load_split(root / "test", classes, image_size, channels)
    return DataSplits(train, val, test, classes, str(root))
