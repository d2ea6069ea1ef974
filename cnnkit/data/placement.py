"""Deciding where a dataset's images live while training: decoded in memory (then moved to the
training device once, the fast path) while they fit the memory budget, else streamed from their
source batch by batch."""

from __future__ import annotations

from cnnkit.console import note, warn
from cnnkit.data.splits import DataSplits, StreamedSplit

GIB = 2**30


def human(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def place(data: DataSplits, mode: str, budget_gib: float, workers: int, streamed: tuple[str, ...] = ()) -> DataSplits:
    """``data`` with its streamed splits read into memory when ``mode`` is ``yes``, or ``auto``
    and their decoded size is within ``budget_gib``; left streaming otherwise. The splits named
    in ``streamed`` stay streamed whatever the mode (augmentations that want original pictures)."""
    parts = data.splits()
    readable = {name: split for name, split in parts.items()
                if isinstance(split, StreamedSplit) and split.fixed_size and name not in streamed}
    if not readable:
        if mode == "no":
            note(f"--data-in-memory no: {data.source} comes in memory from its dataset, so it stays there.")
        return data
    size = sum(split.nbytes for split in readable.values())
    count = sum(len(split) for split in readable.values())
    budget = budget_gib * GIB
    if mode == "yes" or (mode == "auto" and size <= budget):
        if size > budget:
            warn(f"decoding {count} images into memory takes {human(size)}, more than --memory-budget {budget_gib:g} GiB.")
        return data.replace_splits({**parts, **{name: split.materialize(workers) for name, split in readable.items()}})
    why = f"{human(size)} decoded, more than --memory-budget {budget_gib:g} GiB" if mode == "auto" else "--data-in-memory no"
    note(f"streaming {count} images from {data.source} batch by batch ({why}).")
    return data
