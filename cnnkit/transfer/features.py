"""A frozen backbone's features, computed once: the "extract features, then train a classifier"
recipe. With ``--freeze features``, no augmentation and nothing thawing later, every epoch would
push the same images through the same frozen network; cnnkit does it once, under inference mode,
and trains the head on the stored features."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator

import torch
from torch import nn

from cnnkit.console import note
from cnnkit.transfer import surgery


@dataclass
class FeatureSplit:
    """Features ``(N, D)`` (float) and labels, indexed like an in-memory split."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device) -> FeatureSplit:
        return FeatureSplit(self.images.to(device), self.labels.to(device))

    def batches(self, indices: Iterable, device: torch.device, workers: int = 0, augment=None, seeds=None) -> Iterator:
        for index in indices:
            if isinstance(index, torch.Tensor):
                index = index.to(self.images.device)
            yield self.images[index], self.labels[index]


@contextmanager
def headless(model: nn.Module, head: str):
    """``model`` with its head swapped for the identity, so it returns the head's input."""
    layer = surgery.get_module(model, head)
    surgery.set_module(model, head, nn.Identity())
    try:
        yield model
    finally:
        surgery.set_module(model, head, layer)


def head_is_last(model: nn.Module, head: str, size: list[int], device: torch.device) -> bool:
    """Whether the head is the model's last operation (then its input is a feature vector)."""
    probe = torch.rand(2, *size, device=device)
    layer = surgery.get_module(model, head)
    model.eval()
    with torch.inference_mode():
        full = model(probe)
        with headless(model, head):
            features = model(probe)
        try:
            return features.ndim == 2 and torch.allclose(layer(features), full, atol=1e-5)
        except RuntimeError:  # the head cannot take the vector (SqueezeNet's is a convolution before pooling)
            return False


def extract(model: nn.Module, head: str, split, trainer, limit: torch.Tensor | None = None) -> FeatureSplit:
    """The features of ``split`` (or of its samples ``limit``), in order, through the trainer's
    normalisation and precision."""
    positions = limit if limit is not None else torch.arange(len(split))
    chunks = positions.split(trainer.batch_size * 2)
    parts, labels = [], []
    model.eval()
    with headless(model, head), torch.inference_mode():
        for images, batch_labels in split.batches(chunks, trainer.device, trainer.workers):
            with trainer.precision.autocast():
                parts.append(model(trainer.inputs(images)).float())
            labels.append(batch_labels)
    return FeatureSplit(torch.cat(parts).clone(), torch.cat(labels).clone())


def can_cache(run) -> str:
    """Why the features cannot be cached for ``run`` ("" when they can)."""
    transfer, config = run.transfer, run.config
    if transfer is None or not transfer.frozen or transfer.unfreeze_at:
        return "not everything but the head is frozen"
    trainable = {id(p) for p in run.model.parameters() if p.requires_grad}
    if trainable != {id(p) for p in transfer.head_module().parameters()}:
        return "more than the head trains"
    if run.plan.augment.sample or run.plan.augment.mixers:
        return "augmentation changes the images every epoch"
    if len(transfer.heads) > 1:
        return "the model has several heads"
    if run.strategy.world_size > 1 or config.compile:
        return "it is done in single-process runs without --compile"
    if not head_is_last(transfer.model, transfer.head, run.input_size, run.strategy.device):
        return f"the head '{transfer.head}' is not the model's last operation"
    return ""


def cache(run) -> None:
    """Replace the run's splits by their features and train the head alone."""
    why = can_cache(run)
    if why:
        if why not in ("more than the head trains", "not everything but the head is frozen"):
            note(f"features are not cached ({why}); the frozen backbone runs every epoch.")
        return
    transfer, trainer = run.transfer, run.trainer
    parts = {name: extract(transfer.model, transfer.head, split, trainer) for name, split in run.data.splits().items()}
    run.data = run.data.replace_splits(parts)
    trainer.model = transfer.head_module()
    trainer.memory_format = torch.contiguous_format
    note(f"features of the frozen backbone computed once ({parts['train'].images.shape[1]} per image); "
         "epochs train the head on them.")
