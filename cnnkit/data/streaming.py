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
from cnnkit.errors import CnnkitError

if TYPE_CHECKING:
    from cnnkit.data.sources import AnySource

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


def _loader(source: AnySource, batches: list[list], workers: int, pin: bool, augment=None) -> DataLoader:
    """Reading is not random, so the loader gets its own generator: left to itself it draws its
    workers' seed from torch's global one, and streaming would change dropout and initialisation."""
    return DataLoader(
        _Samples(source, augment), batch_sampler=batches, num_workers=workers, collate_fn=_collate, pin_memory=pin,
        generator=torch.Generator(),
    )


def _requests(batches: list[torch.Tensor], augment, seeds: Iterable[torch.Tensor] | None) -> list[list]:
    """What the loader asks its dataset for: sample indices, or (index, seed) pairs to augment."""
    if augment is None:
        return [b.tolist() for b in batches]
    if seeds is None:
        raise ValueError("augment needs seeds: one tensor per batch")
    return [list(zip(b.tolist(), s.tolist())) for b, s in zip(batches, seeds)]


def stream(source: AnySource, batches: list[torch.Tensor], device: torch.device, workers: int, augment=None,
           seeds: Iterable[torch.Tensor] | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(images, labels)`` on ``device`` for each batch of ``source``'s sample indices, each
    image through ``augment`` with its seed when given; pinned memory and asynchronous copies on CUDA."""
    pin = device.type == "cuda"
    requests = _requests(batches, augment, seeds)
    for wanted, (images, ok, failures) in zip(batches, _loader(source, requests, workers, pin, augment)):
        report(failures)
        if images is None:
            raise CnnkitError(f"No image of a batch could be read ({'; '.join(failures[:3])}); see the warnings, "
                              "then remove or replace those files (or use a larger --batch-size).")
        labels = source.labels[wanted]
        if not ok.all():  # the first image read stands in for each that failed: same batch size, same steps
            images = images[torch.where(ok, torch.cumsum(ok.long(), 0) - 1, 0)]
            labels = torch.where(ok, labels, labels[ok][0])
        yield images.to(device, non_blocking=pin), labels.to(device, non_blocking=pin)


def read_all(source: AnySource, indices: torch.Tensor, shape: tuple[int, int, int], workers: int,
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples ``indices`` of ``source`` (each of ``shape``) decoded into one uint8 tensor, with
    their labels; unreadable ones dropped."""
    chunks = [indices[part] for part in torch.arange(len(indices)).split(256)]
    images = torch.empty((len(indices), *shape), dtype=torch.uint8)
    keep = torch.ones(len(indices), dtype=torch.bool)
    start = 0
    for wanted, (batch, ok, failures) in zip(chunks, _loader(source, [c.tolist() for c in chunks], workers, False)):
        report(failures)
        positions = torch.arange(start, start + len(wanted))
        if batch is not None:
            images[positions[ok]] = batch
        keep[positions[~ok]] = False
        start += len(wanted)
    labels = source.labels[indices]
    if keep.all():
        return images, labels
    return images[keep], labels[keep]
