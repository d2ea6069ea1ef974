"""Reading a streamed split through a ``DataLoader``: per batch while training, or all at once
into memory. A sample that cannot be read gets one warning (per file): read into memory, it is
left out; in a streamed batch, another image of the batch stands in for it, so the batch keeps
its size (and processes their steps in step). Training never dies on a damaged file."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from cnnkit.console import warn
from cnnkit.data.images import UnreadableImage
from cnnkit.data.splits import Index, Split
from cnnkit.errors import CnnkitError

if TYPE_CHECKING:
    from cnnkit.data.splits import StreamedSplit

_warned: set[str] = set()
"""Samples that failed to read in this process (``"name: reason"``), each warned about once."""


def forget_unreadable() -> None:
    """Start a new run's record of samples that failed to read."""
    _warned.clear()


def unreadable() -> list[str]:
    return sorted(_warned)


def auto_workers(cpus: int | None = None) -> int:
    """Loader processes per training process: none on 2 cores or fewer (decoding in the main
    process measured fastest there, see benchmarks/data_loading.py), else one per spare core, up
    to 8, shared among the processes of this machine."""
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cpus <= 2:
        return 0
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(0, min(8, (cpus - 1) // local))


class _Samples(Dataset):
    """Samples of ``source``, asked for by index or by (index, augmentation seed)."""

    def __init__(self, source, augment=None):
        self.source = source
        self.augment = augment

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, item):
        index, seed = item if isinstance(item, tuple) else (item, None)
        try:
            image = torch.from_numpy(np.ascontiguousarray(self.source.read(index)))
        except UnreadableImage as exc:
            return None, f"{self.source.name(index)}: {exc}"
        return (image if seed is None else self.augment(image, seed)), None


def _collate(items):
    """``(images or None, which items were read, failure messages)``."""
    images = [image for image, _ in items if image is not None]
    ok = torch.tensor([image is not None for image, _ in items], dtype=torch.bool)
    failures = [why for _, why in items if why is not None]
    return (torch.stack(images) if images else None), ok, failures



def report(failures: list[str]) -> None:
    for failure in failures:
        if failure not in _warned:
            _warned.add(failure)
            warn(f"skipping unreadable image {failure}")


def _loader(split: StreamedSplit, batches: list[list], workers: int, pin: bool, augment=None) -> DataLoader:
    """Reading is not random, so the loader gets its own generator: left to itself it draws its
    workers' seed from torch's global one, and streaming would change dropout and initialisation."""
    return DataLoader(
        _Samples(split.source, augment), batch_sampler=batches, num_workers=workers, collate_fn=_collate, pin_memory=pin,
        generator=torch.Generator(),
    )


def _source_batches(split: StreamedSplit, indices: Iterable[Index]) -> list[torch.Tensor]:
    return [split.indices[index] for index in indices]


def stream(split: StreamedSplit, indices: Iterable[Index], device: torch.device, workers: int, augment=None,
           seeds: Iterable[torch.Tensor] | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(images, labels)`` on ``device`` for each batch of positions in ``split``, each image
    through ``augment`` with its seed when given; pinned memory and asynchronous copies on CUDA."""
    batches = _source_batches(split, indices)
    pin = device.type == "cuda"
    if augment is None:
        requests = [b.tolist() for b in batches]
    else:
        requests = [list(zip(b.tolist(), s.tolist())) for b, s in zip(batches, seeds)]
    for wanted, (images, ok, failures) in zip(batches, _loader(split, requests, workers, pin, augment)):
        report(failures)
        if images is None:
            raise CnnkitError(f"No image of a batch could be read ({'; '.join(failures[:3])}); see the warnings, "
                              "then remove or replace those files (or use a larger --batch-size).")
        labels = split.source.labels[wanted]
        if not ok.all():  # the first image read stands in for each that failed: same batch size, same steps
            images = images[torch.where(ok, torch.cumsum(ok.long(), 0) - 1, 0)]
            labels = torch.where(ok, labels, labels[ok][0])
        yield images.to(device, non_blocking=pin), labels.to(device, non_blocking=pin)


def read_all(split: StreamedSplit, workers: int) -> Split:
    """Every sample of ``split`` decoded into one uint8 tensor; unreadable ones dropped."""
    chunks = _source_batches(split, torch.arange(len(split)).split(256))
    images = torch.empty((len(split), *split.source.sample_shape), dtype=torch.uint8)
    keep = torch.ones(len(split), dtype=torch.bool)
    start = 0
    for wanted, (batch, ok, failures) in zip(chunks, _loader(split, [c.tolist() for c in chunks], workers, False)):
        report(failures)
        positions = torch.arange(start, start + len(wanted))
        if batch is not None:
            images[positions[ok]] = batch
        keep[positions[~ok]] = False
        start += len(wanted)
    labels = split.labels
    if keep.all():
        return Split(images, labels)
    return Split(images[keep], labels[keep])
