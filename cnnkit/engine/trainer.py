"""One epoch of training and one pass of evaluation over tensor data on the device."""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import nn

from cnnkit.data.splits import Split
from cnnkit.engine.metrics import RunningMetrics
from cnnkit.engine.progress import Progress

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class Trainer:
    """Owns the model, optimizer and schedule; data arrives as uint8 tensors on ``device``.

    Images are turned into floats, augmented (training only) and normalised batch by batch on
    the device. Evaluation uses the same ``loss_fn`` (label smoothing included, as torchvision's
    reference recipe does), so train and validation curves are comparable.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: nn.Module,
        *,
        device: torch.device,
        mean: list[float],
        std: list[float],
        batch_size: int,
        progress: Progress,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        scheduler_per_batch: bool = False,
        augment: Augment | None = None,
        seed: int = 0,
    ):
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.device = device
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self.batch_size = batch_size
        self.progress = progress
        self.scheduler = scheduler
        self.scheduler_per_batch = scheduler_per_batch
        self.augment = augment
        self.shuffle_generator = torch.Generator().manual_seed(seed)
        self.augment_generator = torch.Generator(device=device).manual_seed(seed + 1)

    def steps(self, split: Split) -> int:
        return -(-len(split) // self.batch_size)

    def batches(self, split: Split, shuffle: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(split)
        order = torch.randperm(n, generator=self.shuffle_generator).to(split.images.device) if shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                yield split.images[start:start + self.batch_size], split.labels[start:start + self.batch_size]
            else:
                index = order[start:start + self.batch_size]
                yield split.images[index], split.labels[index]

    def inputs(self, images: torch.Tensor, train: bool) -> torch.Tensor:
        x = images.float().div_(255)
        if train and self.augment is not None:
            x = self.augment(x, self.augment_generator)
        return (x - self.mean) / self.std

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def train_epoch(self, split: Split, epoch: int) -> dict[str, float]:
        self.model.train()
        metrics = RunningMetrics(self.device)
        self.progress.start_epoch(epoch, self.steps(split))
        for step, (images, labels) in enumerate(self.batches(split, shuffle=True), start=1):
            logits = self.model(self.inputs(images, train=True))
            loss = self.loss_fn(logits, labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.scheduler is not None and self.scheduler_per_batch:
                self.scheduler.step()
            metrics.update(loss, logits, labels)
            self.progress.step(step, metrics.compute)
        if self.scheduler is not None and not self.scheduler_per_batch:
            self.scheduler.step()
        return metrics.compute()

    @torch.no_grad()
    def evaluate(self, split: Split) -> dict[str, float]:
        self.model.eval()
        metrics = RunningMetrics(self.device)
        for images, labels in self.batches(split, shuffle=False):
            logits = self.model(self.inputs(images, train=False))
            metrics.update(self.loss_fn(logits, labels), logits, labels)
        return metrics.compute()
