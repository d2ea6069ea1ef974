"""``cnnkit data check``: what a folder holds and what ``--data PATH`` would do with it, before
any training. Every file is hashed and decoded in full, so it finds what training would skip.
A built-in dataset's name (``digits``, ``mnist``...) checks that dataset, as training reads it."""

from __future__ import annotations

import hashlib
import math
import os
import shlex
import statistics
from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypedDict

from cnnkit.data.folder import Layout, list_folder
from cnnkit.data.images import UnreadableImage, decode, forget_rescaled, probe
from cnnkit.errors import UsageError


class Leak(TypedDict):
    splits: list[str]
    files: list[str]


class Conflict(TypedDict):
    classes: list[str]
    files: list[str]
    same_file: bool


IMBALANCE_ADVICE = 3.0
"""The imbalance from which data check suggests --class-weights or --sampler: from there the
largest class outweighs the smallest threefold or more in every epoch's loss."""


@dataclass
class Report:
    root: str
    layout: str = ""
    classes: list[str] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    """Readable images per split, per class, as training would split them."""
    imbalance: float | None = None
    """Images of the largest training class over those of the smallest (None when a class has none)."""
    advice: str = ""
    """What to train an unbalanced dataset with (imbalance at least :data:`IMBALANCE_ADVICE`), else empty."""
    sizes: dict[str, list[int]] = field(default_factory=dict)
    """``width`` and ``height``: [min, median, max] over readable images."""
    modes: dict[str, int] = field(default_factory=dict)
    unreadable: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[list[str]] = field(default_factory=list)
    leaks: list[Leak] = field(default_factory=list)
    """Duplicate groups whose copies land in different splits."""
    conflicts: list[Conflict] = field(default_factory=list)
    """Duplicate groups whose copies are in different classes (``same_file``: all one file, reached
    through links): a folder with any is not trainable; a built-in dataset is trained as published."""
    links: list[dict[str, str]] = field(default_factory=list)
    """Links that training does not follow (loops, links into other classes or splits, folders and
    files already read), as ``link``, ``target`` and ``reason``."""
    plan: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Why the folder cannot be trained on; empty when it can."""

    @property
    def trainable(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "trainable": self.trainable}


@dataclass
class Sample:
    path: Path | str
    label: int
    digest: str


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def inspect(path: Path, report: Report, modes: Counter, widths: list[int], heights: list[int]) -> bool:
    """Whether ``path`` is a readable image (fully decoded); its facts go into ``report``."""
    try:
        mode, width, height = probe(path)
        decode(path, (16, 16), 3)
    except UnreadableImage as exc:
        report.unreadable.append({"file": str(path), "reason": str(exc)})
        return False
    modes[mode] += 1
    widths.append(width)
    heights.append(height)
    return True


def spread(values: list[int]) -> list[int]:
    return [min(values), int(statistics.median(values)), max(values)] if values else []


def check_folder(root: Path, val_split: float = 0.2, seed: int = 0, memory_budget: float = 2.0,
                 given: str | None = None) -> Report:
    """Inspect ``root`` as ``cnnkit train --data root`` would read it; ``given``: ``root`` as the
    user wrote it (``./digits``), which the report repeats so its ``--data`` advice reads the
    same folder (``digits`` alone would be the built-in dataset)."""
    report = Report(given or str(root))
    if not root.is_dir():
        raise UsageError(f"'{root}' {'is not a folder' if root.exists() else 'does not exist'}; pass an image folder.")
    forget_rescaled()
    try:
        layout = list_folder(root)
    except UsageError as exc:
        report.problems.append(str(exc).rstrip("."))
        return report
    report.classes = layout.classes
    report.links = layout.listing.skipped
    report.problems += layout.listing.problems
    splits = layout.splits
    report.layout = (
        " + ".join(f"{layout.folders[name].name}/" for name in layout.folders) + " split folders"
        if splits else "class folders, no split folders"
    )
    report.problems += [difference[0].lower() + difference[1:] for difference in layout.differences()]
    found = inspect_all(layout, report)
    if len(report.classes) < 2:
        report.problems.append(f"'{layout.folders['train']}' has {len(report.classes)} class folder(s); a classifier needs at least 2")
    if "val" not in splits and found.get("train"):
        split_off_validation(report, found, val_split, seed)
    tally(report, found, {split: f"{split}/" for split in splits}, layout.listing.refused)
    find_duplicates(report, found)
    report.plan = describe_plan(report, splits, val_split, memory_budget)
    return report


def inspect_all(layout: Layout, report: Report) -> dict[str, list[Sample]]:
    """The readable images of every split, hashed; their sizes and modes go into ``report``."""
    modes: Counter = Counter()
    widths: list[int] = []
    heights: list[int] = []
    found: dict[str, list[Sample]] = {}
    for split, per_class in layout.images.items():
        samples = []
        for label, name in enumerate(report.classes):
            for path in per_class.get(name, []):
                if inspect(path, report, modes, widths, heights):
                    samples.append(Sample(path, label, hash_file(path)))
        found[split] = samples
    report.sizes = {"width": spread(widths), "height": spread(heights)}
    report.modes = dict(modes.most_common())
    return found


def split_off_validation(report: Report, found: dict[str, list[Sample]], val_split: float, seed: int) -> None:
    """``found``'s training images split into train and val as training splits them (no val/ folder)."""
    import torch

    from cnnkit.data.splits import split_indices

    if not 0 < val_split < 1:
        report.problems.append(f"there is no val/ folder, so --val-split must be between 0 and 1 (got {val_split})")
        return
    labels = torch.tensor([s.label for s in found["train"]])
    train_idx, val_idx = split_indices(labels, val_split, torch.Generator().manual_seed(seed))
    everything = found["train"]
    found["train"] = [everything[i] for i in train_idx.tolist()]
    found["val"] = [everything[i] for i in val_idx.tolist()]
    if not found["val"]:
        report.problems.append("too few images to split off a validation set; add images or a val/ folder")


def tally(report: Report, found: dict[str, list[Sample]], own: dict[str, str],
          excused: Collection[tuple[str, str]] = ()) -> None:
    """Images per split and class, the imbalance, and a problem for each class left without
    images in the training split or in a split the data has of its own (``own``: how to name it),
    but those ``excused`` (split, class): class folders already named in a problem."""
    for split, samples in found.items():
        per_class = Counter(s.label for s in samples)
        report.counts[split] = {name: per_class[i] for i, name in enumerate(report.classes)}
    train_counts = list(report.counts.get("train", {}).values())
    for split, counts in report.counts.items():
        for name, count in counts.items():
            if count == 0 and (split == "train" or split in own) and (split, name) not in excused:
                where = "training" if split == "train" else own[split]
                report.problems.append(f"class '{name}' has no readable {where} images")
    if train_counts and min(train_counts) > 0:
        report.imbalance = round(max(train_counts) / min(train_counts), 3)
        if report.imbalance >= IMBALANCE_ADVICE:
            report.advice = (f"unbalanced ({report.imbalance:g}x): train with --class-weights auto (the loss weighs rare classes "
                             "more) or --sampler balanced (each class drawn equally often)")


def find_duplicates(report: Report, found: dict[str, list[Sample]], own_data: bool = True) -> None:
    """Groups of identical images; those across splits are leaks, those across classes conflicts:
    the same image taught as two classes, a problem in ``own_data`` (a folder: a copy or link
    gone wrong), a finding in a published dataset (kept as published)."""
    groups: dict[str, list[tuple[str, Sample]]] = defaultdict(list)
    for split, samples in found.items():
        for sample in samples:
            groups[sample.digest].append((split, sample))
    for members in groups.values():
        if len(members) < 2:
            continue
        files = sorted(str(sample.path) for _, sample in members)
        report.duplicates.append(files)
        where = sorted({split for split, _ in members})
        if len(where) > 1:
            report.leaks.append({"splits": where, "files": files})
        labels = sorted({sample.label for _, sample in members})
        if len(labels) > 1:
            names = [report.classes[i] for i in labels]
            report.conflicts.append({"classes": names, "files": files, "same_file": one_file(members)})
    report.duplicates.sort()
    report.conflicts.sort(key=lambda c: c["files"])
    if report.conflicts and own_data:
        first = report.conflicts[0]
        how = "are one file (reached through links)" if first["same_file"] else "hold the same image"
        report.problems.append(
            f"{len(report.conflicts)} image(s) are in two classes at once, so their labels contradict each other "
            f"(e.g. {' and '.join(first['files'])} {how}, in classes {' and '.join(first['classes'])}); "
            "remove each from the class it does not belong to")


def one_file(members: list[tuple[str, Sample]]) -> bool:
    """Whether the copies are all one file (by real path), reached through links."""
    return len({os.path.realpath(sample.path) if isinstance(sample.path, Path) else sample.path for _, sample in members}) == 1


CONFLICT_EXAMPLES = 3
"""Label conflicts named per pair of classes in data check's text (all are in its ``--json``)."""


def conflict_lines(conflicts: list[Conflict]) -> list[str]:
    """The label conflicts, one line per set of classes: how many images, and a few of them."""
    by_classes: dict[tuple[str, ...], list[list[str]]] = defaultdict(list)
    for conflict in conflicts:
        by_classes[tuple(conflict["classes"])].append(conflict["files"])
    lines = [f"label conflicts ({len(conflicts)} image(s) in two classes at once):"]
    for classes, group in sorted(by_classes.items(), key=lambda item: (-len(item[1]), item[0])):
        shown = "; ".join(" = ".join(files) for files in group[:CONFLICT_EXAMPLES])
        more = f"; and {len(group) - CONFLICT_EXAMPLES} more" if len(group) > CONFLICT_EXAMPLES else ""
        lines.append(f"  classes {' and '.join(classes)}: {len(group)} image(s): {shown}{more}")
    return lines


def describe_plan(report: Report, splits: dict[str, Path], val_split: float, memory_budget: float) -> list[str]:
    counts = {split: sum(per.values()) for split, per in report.counts.items()}
    total = sum(counts.values())
    if not total:
        return []
    sizes = " / ".join(f"{counts[s]} {s}" for s in ("train", "val", "test") if s in counts)
    val = "from val/" if "val" in splits else f"split off train by --val-split {val_split:g}"
    side = math.isqrt(int(min(memory_budget * 2**30, 2**60) // (total * 3)))
    memory = (f"--data-in-memory auto keeps them in memory at inputs up to about {side}x{side} RGB "
              f"(--memory-budget {memory_budget:g} GiB); larger inputs stream from disk") if side else (
              f"--data-in-memory auto streams them from disk (--memory-budget {memory_budget:g} GiB)")
    return [
        f"trains on {sizes} images (validation {val}; {'test/ scored at the end' if 'test' in splits else 'no test split'})",
        f"{len(report.unreadable)} unreadable file(s) skipped" if report.unreadable else "no unreadable files",
        memory,
    ]


def format_report(report: Report) -> str:
    lines = [f"{report.root}: {report.layout or 'layout not recognised'}"]
    lines += class_table(report) + image_lines(report) + finding_lines(report)
    if report.plan:
        lines.append(f"--data {shlex.quote(report.root)}:")
        lines += [f"  {line}" for line in report.plan]
    if report.problems:
        lines.append("not trainable:")
        lines += [f"  {problem}" for problem in report.problems]
    else:
        lines.append("trainable")
    return "\n".join(lines)


def class_table(report: Report) -> list[str]:
    """Images per class (rows) and split (columns), and the imbalance."""
    if not report.classes:
        return []
    splits = list(report.counts)
    width = max(len(c) for c in report.classes + ["class"])
    lines = ["  " + "class".ljust(width) + "".join(f"{s:>8}" for s in splits)]
    for name in report.classes:
        lines.append("  " + name.ljust(width) + "".join(f"{report.counts[s][name]:>8}" for s in splits))
    if report.imbalance is not None:
        lines.append(f"imbalance (largest / smallest training class): {report.imbalance:g}")
    if report.advice:
        lines.append(report.advice)
    return lines


def image_lines(report: Report) -> list[str]:
    """The images' sizes and modes, and the files that could not be read."""
    lines = []
    if report.sizes.get("width"):
        w, h = report.sizes["width"], report.sizes["height"]
        lines.append(f"sizes (min / median / max): width {w[0]} / {w[1]} / {w[2]}, height {h[0]} / {h[1]} / {h[2]}")
        lines.append("modes: " + ", ".join(f"{mode} {count}" for mode, count in report.modes.items()))
    if report.unreadable:
        lines.append(f"unreadable ({len(report.unreadable)}):")
        lines += [f"  {item['file']}: {item['reason']}" for item in report.unreadable]
    return lines


def finding_lines(report: Report) -> list[str]:
    """Duplicates, leaks, label conflicts and the links training does not follow."""
    lines = []
    if report.duplicates:
        lines.append(f"exact duplicates ({len(report.duplicates)} group(s)):")
        lines += ["  " + " = ".join(group) for group in report.duplicates]
    for leak in report.leaks:
        lines.append(f"leakage: the same image is in {' and '.join(leak['splits'])}: {', '.join(leak['files'])}")
    if report.conflicts:
        lines += conflict_lines(report.conflicts)
    if report.links:
        lines.append(f"links not followed ({len(report.links)}), as training does not follow them:")
        lines += [f"  {item['link']} -> {item['target']}: {item['reason']}" for item in report.links]
    return lines
