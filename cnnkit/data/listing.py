"""Listing a dataset's image files by real path, so no image is read twice or under a class it is
not in, whatever links lead to it. Training and ``cnnkit data check`` list a folder with one
:class:`Listing`, so they read the same files.

What links may do, and what cnnkit does:

- a link to a folder or file outside the data: followed (data assembled from links);
- a link back up to a folder that holds it, or to the data folder or above it (a loop), class
  folders included (``ln -s . DATA/3`` is not a class): skipped with a warning;
- a link into another class or split folder (of the data, or a class folder outside it reached
  through a link): skipped with a warning, so that image is read once, under its own class;
- a folder or file reached twice: read once; the second time skipped with a note in the same class,
  with a warning in another split of that class (so it is not validated on after being trained on);
- class folders that are one folder or nested (``DATA/3 -> 1``, ``val/1 -> ../train/1``), and a
  folder or file outside the data reached from two classes: a problem, which training refuses
  (exit 2) and ``data check`` reports (not trainable). No label can be given to their images
  without a guess, and skipping a class folder would drop a class the folder shows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from cnnkit.console import note, warn

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
LOOP = "it leads back up to a folder that holds it (a loop), whose other folders' images are not this folder's"
ABOVE_DATA = "it leads to the data folder or above it (a loop), whose classes' images are not this folder's"
CLASS_LOOP = "it leads back up to a folder that holds every class (a loop), so it is not a class of its own"


@dataclass(frozen=True)
class Place:
    """Where a folder or file is read: its split, its class, and the path that reached it."""

    split: str
    label: str
    path: Path

    def same_class(self, other: Place) -> bool:
        return (self.split, self.label) == (other.split, other.label)


def is_run_directory(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "last.pt").is_file()


def is_image_name(name: str) -> bool:
    return not name.startswith(".") and name[name.rfind("."):].lower() in IMAGE_EXTENSIONS


def inside(real: str, folder: str) -> bool:
    """Whether the real path ``real`` is ``folder`` or below it."""
    return real == folder or real.startswith(folder.rstrip(os.sep) + os.sep)


def ancestors(real: str) -> list[str]:
    """The folders holding ``real``, nearest first."""
    found = []
    while (parent := os.path.dirname(real)) != real:
        found.append(parent)
        real = parent
    return found


def visible_folders(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


class Listing:
    """The folders and files of one dataset rooted at ``root`` (None: any folder of images, as
    ``predict`` reads one: loops skipped, each folder once). ``skipped`` collects what was not
    followed ({link, target, reason}), ``problems`` what makes the folder untrainable."""

    def __init__(self, root: Path | None = None, quiet: bool = False):
        self.root = os.path.realpath(root) if root is not None else None
        self.quiet = quiet
        self.dirs: dict[str, Place] = {}
        self.files: dict[str, Place] = {}
        self.class_roots: dict[str, Place] = {}
        self.holders: dict[str, Place] = {}
        self.skipped: list[dict[str, str]] = []
        self.problems: list[str] = []
        self.refused: set[tuple[str, str]] = set()
        """(split, class) of the class folders left out with a problem."""
        self.told: set[str] = set()

    def class_folders(self, directory: Path, split: str) -> dict[str, Path]:
        """The class folders of ``directory`` (the data folder or a split folder) by name. A link
        back up to it or above is skipped with a warning; a folder that is, holds or lies inside
        another class's folder (of any split) is left out with a problem. Call this for every
        split before listing any class's images."""
        here = os.path.realpath(directory)
        kept = {}
        for child in visible_folders(directory):
            target = os.path.realpath(child)
            place = Place(split, child.name, child)
            if inside(here, target):
                self.skip(child, target, CLASS_LOOP)
            elif (problem := self.overlap(child, target, place)) is not None:
                self.problems.append(problem)
                self.refused.add((split, child.name))
            else:
                self.class_roots[target] = place
                self.dirs[target] = place
                for parent in ancestors(target):
                    self.holders.setdefault(parent, place)
                kept[child.name] = child
        return kept

    def overlap(self, child: Path, target: str, place: Place) -> str | None:
        """The problem with the class folder ``child`` (real path ``target``) when it is, holds or
        lies inside the folder of a class listed before it."""
        same = self.class_roots.get(target)
        if same is not None:
            return clash(one_folder(same.path, child, target), same, place)
        held = self.holders.get(target)
        if held is not None:
            return clash(f"'{child}' ('{target}') holds the class folder '{held.path}', reached through a link", held, place)
        outer = next((self.class_roots[p] for p in ancestors(target) if p in self.class_roots), None)
        if outer is not None:
            return clash(f"'{child}' ('{target}') is inside the class folder '{outer.path}', reached through a link",
                         outer, place)
        return None

    def images(self, folder: Path, place: Place | None = None) -> tuple[list[Path], list[Path]]:
        """The images below ``folder``, in name order (a folder's files, then its subfolders'),
        and the cnnkit run directories found there (whose files are not data). Hidden files and
        folders are skipped, and so are the links the module's rules do not follow."""
        place = place or Place("", "", folder)
        top = os.path.realpath(folder)
        self.dirs.setdefault(top, place)
        images: list[Path] = []
        runs: list[Path] = []
        pending = [(folder, top)]
        while pending:
            here, real = pending.pop()
            if is_run_directory(here):
                runs.append(here)
                continue
            dirs, files = self.entries(here)
            entered = [(here / name, target) for name, link in dirs
                       if (target := self.enter(here / name, link, real, top, place)) is not None]
            if self.root is None or not (self.files or any(link for _, link in files)):
                images += [here / name for name, _ in files]  # no link among them, none read through one
            else:
                images += [path for name, link in files if self.take(path := here / name, link, real, top, place)]
            pending += reversed(entered)
        return images, runs

    @staticmethod
    def entries(folder: Path) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
        """(name, is a link) of the visible subfolders and image files of ``folder``, by name
        (folders and links to folders; a link to nothing counts as a file)."""
        dirs, files = [], []
        try:
            with os.scandir(folder) as scan:
                for entry in scan:
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir():
                        dirs.append((entry.name, entry.is_symlink()))
                    elif is_image_name(entry.name):
                        files.append((entry.name, entry.is_symlink()))
        except OSError:
            return [], []
        return sorted(dirs), sorted(files)

    def enter(self, path: Path, link: bool, parent: str, top: str, place: Place) -> str | None:
        """The real path of the subfolder ``path`` when it is to be read, else None."""
        target = os.path.realpath(path) if link else os.path.join(parent, path.name)
        if inside(parent, target) or inside(top, target):
            why: str | None = LOOP
        elif self.root is not None and inside(self.root, target):
            why = ABOVE_DATA
        else:
            why = self.elsewhere(target, top, place)
        if why is not None:
            self.skip(path, target, why)
        elif target in self.dirs:
            self.again(path, target, "folder", self.dirs[target], place)
        else:
            self.dirs[target] = replace(place, path=path)
            return target
        return None

    def take(self, path: Path, link: bool, parent: str, top: str, place: Place) -> bool:
        """Whether the image file ``path`` is to be read."""
        target = os.path.realpath(path) if link else os.path.join(parent, path.name)
        why = self.elsewhere(target, top, place) if link else None
        if why is not None:
            self.skip(path, target, why)
            return False
        previous = self.files.get(target)
        if previous is None and link and is_image_name(os.path.basename(target)):
            previous = self.dirs.get(os.path.dirname(target))  # read (or to be read) in its own folder
        if previous is not None:
            self.again(path, target, "file", previous, place)
            return False
        if link:
            self.files[target] = replace(place, path=path)
        return True

    def elsewhere(self, target: str, top: str, place: Place) -> str | None:
        """Why ``target`` belongs to another part of the data than ``top``, the class folder of
        ``place``; None when it does not."""
        if inside(target, top):
            return None
        if self.root is not None and inside(target, self.root):
            return f"it leads to '{os.path.relpath(target, self.root)}' of the data, whose images belong there, not here"
        owner = next((self.class_roots[p] for p in [target, *ancestors(target)] if p in self.class_roots), None)
        if owner is not None and not owner.same_class(place):
            return f"it leads into the class folder '{owner.path}', whose images belong there, not here"
        held = self.holders.get(target)
        if held is not None and not held.same_class(place):
            return f"it leads to a folder holding the class folder '{held.path}', whose images are not this folder's"
        return None

    def again(self, path: Path, target: str, what: str, previous: Place, place: Place) -> None:
        """A folder or file already read through ``previous``: skipped (a note in the same class,
        a warning in another split of it), a problem in another class."""
        if previous.same_class(place):
            self.skip(path, target, f"a {what} already read (through another link)", as_note=True)
        elif previous.label == place.label:
            self.skip(path, target, f"it leads to a {what} already read as {previous.split} images (through "
                                    f"'{previous.path}'), which are not also {place.split} images")
        else:
            self.problems.append(clash(f"'{previous.path}' and '{path}' lead to one {what} ('{target}')", previous, place))

    def skip(self, path: Path, target: str, why: str, as_note: bool = False) -> None:
        """Record ``path`` as not followed, and say so once (a note for a mere repeat)."""
        self.skipped.append({"link": str(path), "target": target, "reason": why})
        message = f"skipping '{path}': {why}." if as_note else f"skipping the link '{path}' (to '{target}'): {why}."
        if not self.quiet and message not in self.told:
            self.told.add(message)
            (note if as_note else warn)(message)


def one_folder(first: Path, second: Path, target: str, what: str = "class folder") -> str:
    """Two class (or split) folders that are one folder, named as the user made them."""
    if first.is_symlink() and second.is_symlink():
        return f"'{first}' and '{second}' are links to one folder ('{target}')"
    link, folder = (second, first) if second.is_symlink() else (first, second)
    return f"'{link}' is a link to the {what} '{folder}'"


def clash(what: str, first: Place, second: Place) -> str:
    """A problem: one folder or file read in two places."""
    if first.label != second.label:
        harm = f"its images would be read as class '{first.label}' and as class '{second.label}'"
        fix = "keep it in the class it belongs to and remove the link from the other"
    else:
        harm = f"its images would be both {first.split} and {second.split} images (leakage)"
        fix = f"give {second.split} images of its own"
    return f"{what}, so {harm}; {fix}"
