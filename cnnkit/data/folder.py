"""Image folders in torchvision's ImageFolder layout, loaded into uint8 tensors.

Accepted layouts::

    ROOT/train/<class>/*.png  +  ROOT/val/<class>/*.png  [+ ROOT/test/<class>/*.png]
    ROOT/train/<class>/*.png  (validation split off by --val-split)
    ROOT/<class>/*.png        (validation split off by --val-split)

Split folders are matched without regard to case and by their common names (``training``;
``valid``, ``validation``, ``dev``; ``testing``). A class folder without images is an error, and a
folder of cnnkit runs (an ``--out`` folder inside the data) is skipped with a note. Links are
followed as :mod:`cnnkit.data.listing` says: every real folder and file read at most once, never
back up to the data nor into another class or split.

Every file is probed before training (unreadable ones are skipped with a warning and counted),
then decoded as :mod:`cnnkit.data.images` describes: converted to the channels the model wants,
resized so the shorter side matches the model's input and centre-cropped, as torchvision's
evaluation transforms do.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnkit.console import note, warn
from cnnkit.contracts._data import DataRequest
from cnnkit.data.images import UnreadableImage, forget_rescaled, probe, stored_channels
from cnnkit.data.listing import IMAGE_EXTENSIONS, Listing, Place, inside, one_folder, visible_folders
from cnnkit.data.sources import FileSource
from cnnkit.data.splits import DataSplits, StreamedSplit, split_indices
from cnnkit.errors import UsageError

SPLIT_NAMES = {"train": ("train", "training"), "val": ("val", "valid", "validation", "dev"), "test": ("test", "testing")}
LAYOUT_HINT = (
    "expected ROOT/train/<class>/<images> and ROOT/val/<class>/<images>, "
    "or ROOT/<class>/<images> split by --val-split"
)


def images_in(folder: Path, fence: Path | None = None) -> tuple[list[Path], list[Path]]:
    """The images below ``folder``, sorted, and the cnnkit run directories found there (whose
    files are not data). Hidden files and folders (``.ipynb_checkpoints``, ``._x.png``) are
    skipped. Links to folders are followed, each folder entered once by its real path, but never
    back up (a loop); given ``fence`` (the data root), quietly, nor into the rest of the data."""
    return Listing(fence, quiet=fence is not None).images(folder)


@dataclass
class Layout:
    """A data folder as training reads it: its split folders (none: class folders at the root),
    the images of each class of each split, in name order, and its :class:`Listing` (the links
    not followed, and the problems that make it untrainable)."""

    root: Path
    splits: dict[str, Path]
    folders: dict[str, Path]
    """train, val (when a folder), test (when a folder): the folder holding that split's classes."""
    images: dict[str, dict[str, list[Path]]]
    listing: Listing

    @property
    def classes(self) -> list[str]:
        return list(self.images["train"])

    def differences(self) -> list[str]:
        """A sentence for each split whose class folders are not the training split's."""
        refused = {name for split, name in self.listing.refused if split == "train"}
        return [f"Class folders of '{self.folders[split]}' differ from those of '{self.folders['train']}': {names} vs "
                f"{self.classes}" for split, names in self.class_names().items() if set(names) - refused != set(self.classes)]

    def class_names(self) -> dict[str, list[str]]:
        """Each split's class folders, those left out with a problem included."""
        return {split: sorted({*found, *(name for where, name in self.listing.refused if where == split)})
                for split, found in self.images.items()}


def list_folder(root: Path) -> Layout:
    """The layout of ``root``: split folders (:func:`find_splits`, which raises on a bad one),
    then every split's class folders (each class folder of every split known before any image is
    listed, so no link reads one class's images as another's), then their images. A class folder
    holding nothing but cnnkit runs is skipped with a note."""
    splits = find_splits(root)
    folders: dict[str, Path] = {"train": splits.get("train", root),
                                **{name: splits[name] for name in ("val", "test") if name in splits}}
    listing = Listing(root)
    found = {split: listing.class_folders(folder, split) for split, folder in folders.items()}
    images = {split: class_images(listing, split, classes) for split, classes in found.items()}
    return Layout(root, splits, folders, images, listing)


def class_images(listing: Listing, split: str, classes: dict[str, Path]) -> dict[str, list[Path]]:
    kept: dict[str, list[Path]] = {}
    for name, folder in classes.items():
        images, runs = listing.images(folder, Place(split, name, folder))
        if runs and not images:
            note(f"skipping '{folder}': it holds cnnkit runs, not a class of images.")
            continue
        if runs:
            note(f"ignoring the cnnkit runs inside '{folder}' ({', '.join(str(r) for r in runs)}).")
        kept[name] = images
    return kept


def refuse(problems: list[str], root: Path) -> None:
    """Raise the first of ``problems`` (a sentence), counting the others."""
    if problems:
        more = f" ({len(problems) - 1} more such problem(s); 'cnnkit data check {root}' lists them)" if len(problems) > 1 else ""
        raise UsageError(f"{problems[0][0].upper()}{problems[0][1:]}.{more}")


def list_samples(layout: Layout, split: str) -> list[tuple[Path, int]]:
    directory = layout.folders[split]
    kinds = ", ".join(IMAGE_EXTENSIONS)
    per_class = [layout.images[split][name] for name in layout.classes]
    if not any(per_class):
        raise UsageError(f"No images found in the class folders of '{directory}' (looked for {kinds}); {LAYOUT_HINT}.")
    for name, found in zip(layout.classes, per_class):
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
        listed = ", ".join(f"'{path.name}'" for path in found.values())
        raise UsageError(f"'{root}' has {listed} but no train folder; add ROOT/train/<class>/ (or drop the split folders).")
    check_split_links(root, found)
    others = [p.name for p in visible_folders(root) if p not in found.values() and images_in(p, root)[0]] if found else []
    if others:
        raise UsageError(
            f"'{root}' has split folders ({', '.join(p.name for p in found.values())}) and other folders of images "
            f"({', '.join(others)}); move those into the splits or out of '{root}'."
        )
    return found


def check_split_links(root: Path, splits: dict[str, Path]) -> None:
    """Split folders that are links may lead anywhere but back up to the data (a loop) or to
    another split's folder (the same images in two splits)."""
    top = os.path.realpath(root)
    seen: dict[str, tuple[str, Path]] = {}
    for split, folder in splits.items():
        target = os.path.realpath(folder)
        if inside(top, target):
            raise UsageError(f"'{folder}' is a link to '{target}', which holds the data folder (a loop); "
                             f"make it a folder of its own {split} images.")
        for real, (other, path) in seen.items():
            if real == target:
                how = one_folder(path, folder, target, "split folder")
            elif inside(real, target) or inside(target, real):
                (inner, at), outer = ((path, real), folder) if inside(real, target) else ((folder, target), path)
                how = f"'{inner}' ('{at}') is inside '{outer}', reached through a link"
            else:
                continue
            raise UsageError(f"{how}, so the same images would be {other} and {split} images (leakage); "
                             "give each split its own images.")
        seen[target] = (split, folder)


def scan(layout: Layout, split: str, skipped: list[tuple[str, str]], shapes: Counter) -> tuple[list[Path], torch.Tensor]:
    """The readable images of ``split`` and their labels. Each file is probed (header,
    checksums, end marker; not decoded); an unreadable one is skipped with a warning and added to
    ``skipped``. Stored (channels, height, width) are counted into ``shapes``."""
    paths, labels = [], []
    for path, label in list_samples(layout, split):
        try:
            mode, width, height = probe(path)
        except UnreadableImage as exc:
            warn(f"skipping unreadable image {path}: {exc}")
            skipped.append((str(path), str(exc)))
            continue
        shapes[(stored_channels(mode), height, width)] += 1
        paths.append(path)
        labels.append(label)
    found = Counter(labels)
    empty = [name for index, name in enumerate(layout.classes) if not found[index]]
    if empty:
        raise UsageError(
            f"Class folder '{layout.folders[split] / empty[0]}' has no readable images (every file was skipped, see the "
            "warnings); add readable images or remove the folder."
        )
    return paths, torch.tensor(labels, dtype=torch.long)


def checked_layout(root: Path) -> Layout:
    """The layout of ``root``, refused (with the first reason) when it cannot be trained on."""
    layout = list_folder(root)
    refuse(layout.listing.problems, root)
    classes = layout.classes
    if len(classes) < 2:
        found = f"1 class folder ('{classes[0]}')" if classes else "no class folders"
        raise UsageError(f"'{layout.folders['train']}' has {found}; a classifier needs at least 2: {LAYOUT_HINT}.")
    refuse(layout.differences(), root)
    return layout


def load_folder(root: str | Path, request: DataRequest) -> DataSplits:
    """The splits of the folder ``root``, streamed from its files (cnnkit reads them into memory
    when they fit); every file probed first, so both paths see the same samples."""
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise UsageError(f"Data folder '{root}' {what}; {LAYOUT_HINT}.")
    forget_rescaled()
    layout = checked_layout(root)
    size, channels = request.image_size, request.channels
    skipped: list[tuple[str, str]] = []
    shapes: Counter = Counter()

    def streamed(split: str) -> StreamedSplit:
        paths, labels = scan(layout, split, skipped, shapes if split == "train" else Counter())
        source = FileSource(paths, labels, size, channels, request.crop_fraction, request.interpolation, request.as_weights)
        return StreamedSplit(source, torch.arange(len(paths)))

    train = streamed("train")
    if "val" in layout.folders:
        val = streamed("val")
    else:
        if not 0.0 < request.val_split < 1.0:
            raise UsageError(f"'{root}' has no val/ folder, so --val-split must be between 0 and 1 (got {request.val_split}).")
        generator = torch.Generator().manual_seed(request.seed)
        train_idx, val_idx = split_indices(train.labels, request.val_split, generator)
        train, val = train.subset(train_idx), train.subset(val_idx)
        if len(val) == 0:
            raise UsageError(f"'{root}' has too few images to split off a validation set; add images or a val/ folder.")
    test = streamed("test") if "test" in layout.folders else None
    return DataSplits(train, val, test, layout.classes, str(root), native=shapes.most_common(1)[0][0], skipped=skipped)
