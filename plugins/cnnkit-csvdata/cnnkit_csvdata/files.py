"""Finding the images ``labels.csv`` names: in ``train/``, ``images/`` or the CSV's own folder,
by file name, or by the name without its extension (Kaggle tables often give ids)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_FOLDERS = ("train", "images", ".")
"""Where the images may be, beside the CSV file, in the order preferred when several hold them."""


@dataclass
class Folder:
    """One folder's files, listed once: lookups cost no file-system call, which matters for
    tables of 100,000 rows."""

    path: Path
    extensions: tuple[str, ...]
    names: set[str] = field(default_factory=set)
    stems: dict[str, list[str]] = field(default_factory=dict)
    """An image's name without its extension -> the image files of that name."""

    def __post_init__(self) -> None:
        with os.scandir(self.path) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                self.names.add(entry.name)
                stem, extension = os.path.splitext(entry.name)
                if extension.lower() in self.extensions:
                    self.stems.setdefault(stem, []).append(entry.name)

    def matches(self, name: str) -> list[Path]:
        """The files ``name`` may mean: itself, else itself with an image extension (one, or
        several when the name is ambiguous); a name with folders is looked up on disk."""
        if "/" in name or os.sep in name:
            exact = self.path / name
            if exact.is_file():
                return [exact]
            return [Path(f"{exact}{ext}") for ext in self.extensions if Path(f"{exact}{ext}").is_file()]
        if name in self.names:
            return [self.path / name]
        return [self.path / found for found in sorted(self.stems.get(name, []))]


def image_folders(root: Path, extensions: tuple[str, ...]) -> list[Folder]:
    """The folders of :data:`IMAGE_FOLDERS` that exist below ``root`` (names matched without
    regard to case: ``Train/`` counts), in that order."""
    children = {child.name.lower(): child for child in sorted(root.iterdir()) if child.is_dir()} if root.is_dir() else {}
    found = []
    for name in IMAGE_FOLDERS:
        path = root if name == "." else children.get(name)
        if path is not None:
            found.append(Folder(path, extensions))
    return found


def best_folder(folders: list[Folder], names: Iterable[str]) -> tuple[Folder, int]:
    """The folder that holds most of ``names`` (the earlier one on a tie), and how many it holds."""
    listed = list(names)
    counts = [sum(1 for name in listed if folder.matches(name)) for folder in folders]
    best = max(range(len(folders)), key=lambda i: (counts[i], -i))
    return folders[best], counts[best]
