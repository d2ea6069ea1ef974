"""Image folders in torchvision's ImageFolder layout, loaded into uint8 tensors.

Accepted layouts::

    ROOT/train/<class>/*.png  +  ROOT/val/<class>/*.png  [+ ROOT/test/<class>/*.png]
    ROOT/train/<class>/*.png  (validation split off by --val-split)
    ROOT/<class>/*.png        (validation split off by --val-split)

Split folders are matched without regard to case and by their common names (``training``;
``valid``, ``validation``, ``dev``; ``testing``). A class folder without images is an error, and a
folder of cnnkit runs (an ``--out`` folder inside the data) is skipped with a note.

Every file is probed before training (unreadable ones are skipped with a warning and counted),
then decoded as :mod:`cnnkit.data.images` describes: converted to the channels the model wants,
resized so the shorter side matches the model's input and centre-cropped, as torchvision's
evaluation transforms do.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import torch

from cnnkit.console import note, warn
from cnnkit.contracts import DataRequest
from cnnkit.data.images import UnreadableImage, forget_rescaled, probe, stored_channels
from cnnkit.data.sources import FileSource
from cnnkit.data.splits import DataSplits, StreamedSplit, split_indices
from cnnkit.errors import UsageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
SPLIT_NAMES = {"train": ("train", "training"), "val": ("val", "valid", "validation", "dev"), "test": ("test", "testing")}
LAYOUT_HINT = (
    "expected ROOT/train/<class>/<images> and ROOT/val/<class>/<images>, "
    "or ROOT/<class>/<images> split by --val-split"
)


def is_run_directory(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "last.pt").is_file()


def images_in(folder: Path, fence: Path | None = None,
              skipped: list[dict[str, str]] | None = None) -> tuple[list[Path], list[Path]]:
    """The images below ``folder``, sorted, and the cnnkit run directories found there (whose
    files are not data). Hidden files and folders (``.ipynb_checkpoints``, ``._x.png``) are
    skipped. Links to folders are followed, each folder entered once by its real path; see
    :class:`Walk` for the links that are not (each appended to ``skipped``, when given)."""
    images, runs = [], []
    walk = Walk(folder, fence, skipped)
    for top, dirs, files in os.walk(folder, followlinks=True):
        here = Path(top)
        if is_run_directory(here):
            runs.append(here)
            dirs[:] = []
            continue
        dirs[:] = [d for d in sorted(dirs) if not d.startswith(".") and walk.enters(here / d)]
        for name in sorted(files):
            path = here / name
            if name.startswith(".") or path.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            images.append(path)
    return images, runs


_told: set[str] = set()
"""Links already named in a note or warning while reading one dataset (its folders are listed
more than once: for their classes, then their images)."""


def forget_links() -> None:
    _told.clear()


class Walk:
    """The folders one listing of ``folder`` enters, each once, by real path. Not entered, with
    one warning per link: a link back up to a folder that holds the one it is in, or ``folder``
    (a loop, which would read the folders around it as this one's images); given ``fence`` (the
    data root), a link into the fence but outside ``folder`` (another class's or split's images).
    A folder already read (two links to one folder) is skipped with a note."""

    def __init__(self, folder: Path, fence: Path | None, skipped: list[dict[str, str]] | None):
        self.top = os.path.realpath(folder)
        self.fence = os.path.realpath(fence) if fence is not None else None
        self.seen = {self.top}
        self.skipped = skipped

    def enters(self, path: Path) -> bool:
        real = os.path.realpath(path)
        why = self.refusal(real, os.path.realpath(path.parent))
        if why is None:
            self.seen.add(real)
            return True
        if self.skipped is not None:
            self.skipped.append({"link": str(path), "target": real, "reason": why})
        message = f"skipping '{path}': {why}." if why == ALREADY_READ else f"skipping the link '{path}' (to '{real}'): {why}."
        if message not in _told:
            _told.add(message)
            (note if why == ALREADY_READ else warn)(message)
        return False

    def refusal(self, real: str, parent: str) -> str | None:
        if real in self.seen:
            return ALREADY_READ
        if inside(parent, real) or inside(self.top, real):
            return "it leads back up to a folder that holds it (a loop), whose other folders' images are not this folder's"
        if self.fence is not None and inside(real, self.fence) and not inside(real, self.top):
            return f"it leads to '{os.path.relpath(real, self.fence)}' of the data, whose images belong there, not here"
        return None


ALREADY_READ = "a folder already read (through another link)"


def inside(real: str, folder: str) -> bool:
    """Whether the real path ``real`` is ``folder`` or below it."""
    return real == folder or real.startswith(folder.rstrip(os.sep) + os.sep)


def visible_folders(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def find_classes(directory: Path, fence: Path | None = None) -> list[str]:
    """Class folders: every visible subfolder but cnnkit's own output (skipped with a note).
    ``fence``: the data root, which links inside a class folder may not lead back into."""
    classes = []
    for child in visible_folders(directory):
        images, runs = images_in(child, fence)
        if runs and not images:
            note(f"skipping '{child}': it holds cnnkit runs, not a class of images.")
            continue
        if runs:
            note(f"ignoring the cnnkit runs inside '{child}' ({', '.join(str(r) for r in runs)}).")
        classes.append(child.name)
    return classes


def list_samples(directory: Path, classes: list[str], fence: Path | None = None) -> list[tuple[Path, int]]:
    kinds = ", ".join(IMAGE_EXTENSIONS)
    per_class = [images_in(directory / name, fence)[0] for name in classes]
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
    others = [p.name for p in visible_folders(root) if p not in found.values() and images_in(p, root)[0]] if found else []
    if others:
        raise UsageError(
            f"'{root}' has split folders ({', '.join(p.name for p in found.values())}) and other folders of images "
            f"({', '.join(others)}); move those into the splits or out of '{root}'."
        )
    return found


def scan(directory: Path, classes: list[str], skipped: list[tuple[str, str]], shapes: Counter,
         fence: Path | None = None) -> tuple[list[Path], torch.Tensor]:
    """The readable images of ``directory`` and their labels. Each file is probed (header,
    checksums, end marker; not decoded); an unreadable one is skipped with a warning and added to
    ``skipped``. Stored (channels, height, width) are counted into ``shapes``."""
    paths, labels = [], []
    for path, label in list_samples(directory, classes, fence):
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
    empty = [name for index, name in enumerate(classes) if not found[index]]
    if empty:
        raise UsageError(
            f"Class folder '{directory / empty[0]}' has no readable images (every file was skipped, see the warnings); "
            "add readable images or remove the folder."
        )
    return paths, torch.tensor(labels, dtype=torch.long)


def checked_classes(directory: Path, fence: Path) -> list[str]:
    classes = find_classes(directory, fence)
    if len(classes) < 2:
        found = f"1 class folder ('{classes[0]}')" if classes else "no class folders"
        raise UsageError(f"'{directory}' has {found}; a classifier needs at least 2: {LAYOUT_HINT}.")
    return classes


def checked_like(directory: Path, classes: list[str], train_dir: Path, fence: Path) -> Path:
    found = find_classes(directory, fence)
    if found != classes:
        raise UsageError(f"Class folders of '{directory}' differ from those of '{train_dir}': {found} vs {classes}.")
    return directory


def load_folder(root: str | Path, request: DataRequest) -> DataSplits:
    """The splits of the folder ``root``, streamed from its files (cnnkit reads them into memory
    when they fit); every file probed first, so both paths see the same samples."""
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise UsageError(f"Data folder '{root}' {what}; {LAYOUT_HINT}.")
    forget_rescaled()
    forget_links()
    splits = find_splits(root)
    train_dir = splits.get("train", root)
    classes = checked_classes(train_dir, root)
    size, channels = tuple(request.image_size), request.channels
    skipped: list[tuple[str, str]] = []
    shapes: Counter = Counter()

    def streamed(directory: Path) -> StreamedSplit:
        paths, labels = scan(directory, classes, skipped, shapes if directory == train_dir else Counter(), root)
        source = FileSource(paths, labels, size, channels, request.crop_fraction, request.interpolation, request.as_weights)
        return StreamedSplit(source, torch.arange(len(paths)))

    train = streamed(train_dir)
    if "val" in splits:
        val = streamed(checked_like(splits["val"], classes, train_dir, root))
    else:
        if not 0.0 < request.val_split < 1.0:
            raise UsageError(f"'{root}' has no val/ folder, so --val-split must be between 0 and 1 (got {request.val_split}).")
        generator = torch.Generator().manual_seed(request.seed)
        train_idx, val_idx = split_indices(train.labels, request.val_split, generator)
        train, val = train.subset(train_idx), train.subset(val_idx)
        if len(val) == 0:
            raise UsageError(f"'{root}' has too few images to split off a validation set; add images or a val/ folder.")
    test = streamed(checked_like(splits["test"], classes, train_dir, root)) if "test" in splits else None
    return DataSplits(train, val, test, classes, str(root), native=shapes.most_common(1)[0][0], skipped=skipped)
