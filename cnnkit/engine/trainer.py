"""One epoch of training and one pass of evaluation over tensor data on the device."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.contracts._strategies import Strategy
from cnnkit.data.splits import AnySplit, SampleTransform
from cnnkit.engine.metrics import RunningMetrics
from cnnkit.engine.precision import Precision
from cnnkit.engine.progress import Progress
from cnnkit.errors import CnnkitError

if TYPE_CHECKING:
    from cnnkit.augment.pipeline import BatchAugment


class NonFiniteLoss(CnnkitError):
    """A loss became NaN or infinite: training at ``step`` (None when another process saw it), or
    validation (``steps`` 0)."""

    def __init__(self, epoch: int, step: int | None, steps: int):
        if steps == 0:
            text = f"The validation loss is not finite after epoch {epoch}"
        else:
            where = f"step {step} of {steps}" if step is not None else "a step of another process"
            text = f"The training loss stopped being finite at epoch {epoch}, {where}"
        super().__init__(text)
        self.epoch, self.step, self.steps = epoch, step, steps


class Trainer:
    """Owns the model, optimizer, schedule and gradient scaler; data arrives as uint8 batches on
    the strategy's device (indexed from memory, or streamed: the loop cannot tell).

    Images are turned into floats, augmented (training only) and normalised batch by batch on
    the device. Every process draws the same shuffled order and trains on its share of each
    global batch (``batch_size * world_size`` images); the loss is weighted so the averaged
    gradient equals that of one process taking the whole global batch. Evaluation uses the same
    ``loss_fn`` (label smoothing included, as torchvision's reference recipe does), so train and
    validation curves are comparable.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: nn.Module,
        *,
        strategy: Strategy,
        precision: Precision,
        mean: list[float],
        std: list[float],
        batch_size: int,
        progress: Progress,
        shuffle_seed: int,
        augment_seed: int,
        num_classes: int = 0,
        sample_augment: SampleTransform | None = None,
        batch_augment: BatchAugment | None = None,
        channels_last: bool = False,
        workers: int = 0,
        on_train_mode: Callable[[], None] | None = None,
        sampler: str = "random",
    ):
        device = strategy.device
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.strategy = strategy
        self.precision = precision
        self.scaler = precision.scaler()
        self.device = device
        mean_t = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        std_t = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self.shift, self.scale = -mean_t / std_t, 1.0 / std_t  # (x - mean) / std as one fused op
        self.scale_uint8 = self.scale / 255
        self.batch_size = batch_size
        self.progress = progress
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self.scheduler_per_batch = False
        self.sample_augment = sample_augment
        self.batch_augment = batch_augment
        self.num_classes = num_classes
        self.workers = workers
        self.on_train_mode = on_train_mode
        """Called after ``model.train()``: fine-tuning keeps frozen blocks in eval mode."""
        self.sampler = sampler
        """``random``: every training image once per epoch, shuffled; ``balanced``: as many draws,
        with replacement, each class equally likely (:func:`cnnkit.engine.balance.balanced_draws`)."""
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.shuffle_generator = torch.Generator().manual_seed(shuffle_seed)
        self.augment_generator = torch.Generator(device=device).manual_seed(augment_seed)
        self.sample_generator = torch.Generator().manual_seed(augment_seed)  # a seed per image per epoch

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.strategy.world_size

    def steps(self, split: AnySplit) -> int:
        return len(self.strategy.shard(len(split), self.global_batch))

    def batches(self, split: AnySplit) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
        """Shuffled (or class-balanced) training batches ``(images, labels, weight)`` for this
        process, in :meth:`draw`'s order; ``weight`` turns its mean loss into its share of the
        global batch's mean loss, times the number of processes (DDP averages gradients over
        processes)."""
        n = len(split)
        order = self.draw(split)
        steps = self.strategy.shard(n, self.global_batch, order)
        seeds = None
        if self.sample_augment is not None:
            per_draw = torch.randint(0, 2**62, (n,), generator=self.sample_generator)
            # random: a seed per image (each is drawn once); balanced: per draw, so an image drawn twice is augmented twice
            seeds = self.strategy.shard(n, self.global_batch, per_draw[order] if self.sampler == "random" else per_draw)
        shares = self.shares(split, order, steps)
        for (images, labels), share in zip(split.batches(steps, self.device, self.workers, self.sample_augment, seeds), shares):
            yield images, labels, share

    def draw(self, split: AnySplit) -> torch.Tensor:
        """This epoch's order of training images, from the shuffle generator (the same in every
        process, and in ``last.pt``): a permutation, or balanced draws with replacement."""
        if self.sampler == "balanced":
            from cnnkit.engine.balance import balanced_draws

            return balanced_draws(split.labels, self.shuffle_generator)
        return torch.randperm(len(split), generator=self.shuffle_generator)

    @property
    def mixing(self) -> bool:
        """Whether training targets are class probabilities (mixup, cutmix), not labels."""
        return self.batch_augment is not None and self.batch_augment.mixes

    def class_weight(self) -> torch.Tensor | None:
        """The loss's per-class weights (``--class-weights``); None when every class weighs the same."""
        weight = getattr(self.loss_fn, "weight", None)
        return weight if isinstance(weight, torch.Tensor) else None

    def shares(self, split: AnySplit, order: torch.Tensor, steps: list[torch.Tensor]) -> list[float]:
        """Each step's loss weight for this process (see :meth:`batches`): its images over the
        global batch's, or, when the loss weighs classes (a weighted mean over hard labels), its
        images' class weights over the global batch's, so that DDP's average is still the loss
        of one process taking the whole global batch."""
        n, world, size = len(split), self.strategy.world_size, self.global_batch
        if world == 1:
            return [1.0] * len(steps)
        class_weight = self.class_weight()
        if class_weight is None or self.mixing:  # soft targets: torch takes a plain mean over the batch
            return [len(step) * world / min(size, n - k * size) for k, step in enumerate(steps)]
        per_image = class_weight.detach().cpu().double()[split.labels.cpu()]
        return [float(per_image[step].sum() * world / per_image[order[k * size:(k + 1) * size]].sum())
                for k, step in enumerate(steps)]

    def loss_weight(self, targets: torch.Tensor) -> torch.Tensor | None:
        """For a class-weighted loss over hard labels (a weighted mean), the batch's total weight,
        which the metrics weigh its loss by (:meth:`RunningMetrics.update`); None for a plain mean."""
        class_weight = self.class_weight()
        if class_weight is None or targets.ndim != 1:
            return None
        return class_weight[targets].sum()

    def eval_batches(self, split: AnySplit) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This process's contiguous share of ``split`` (possibly none), in order, batch by batch."""
        n, rank, world = len(split), self.strategy.rank, self.strategy.world_size
        start, stop = rank * n // world, (rank + 1) * n // world
        ranges = [slice(first, min(first + self.batch_size, stop)) for first in range(start, stop, self.batch_size)]
        return split.batches(ranges, self.device, self.workers)

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised float images (evaluation, and training without batch augmentation);
        cached features (``(N, D)`` floats) pass as they are."""
        if images.ndim == 2:
            return images
        return torch.addcmul(self.shift, images.float(), self.scale_uint8).contiguous(memory_format=self.memory_format)

    def train_inputs(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training images and targets: batch augmentations see floats on the 0..1 scale, and
        targets as class probabilities when they mix labels (else the labels pass through)."""
        if self.batch_augment is None:
            return self.inputs(images), labels
        targets = F.one_hot(labels, self.num_classes).float() if self.batch_augment.mixes else labels
        x, targets = self.batch_augment(images.float().div_(255), targets, self.augment_generator)
        return torch.addcmul(self.shift, x, self.scale).contiguous(memory_format=self.memory_format), targets

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def train_epoch(self, split: AnySplit, epoch: int) -> dict[str, float]:
        """One pass over ``split``; raises :class:`NonFiniteLoss` when the loss stopped being finite."""
        self.model.train()
        if self.on_train_mode is not None:
            self.on_train_mode()
        metrics = RunningMetrics(self.device)
        steps = self.steps(split)
        step_losses = torch.zeros(steps, device=self.device)  # kept on the device: found after the epoch
        self.progress.start_epoch(epoch, steps)
        for step, (images, labels, weight) in enumerate(self.batches(split), start=1):
            x, targets = self.train_inputs(images, labels)
            with self.precision.autocast():
                logits = self.model(x)
                loss = self.loss_fn(logits, targets)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss if weight == 1.0 else loss * weight).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.scheduler is not None and self.scheduler_per_batch:
                self.scheduler.step()
            step_losses[step - 1] = loss.detach()
            labels = targets.argmax(1) if targets.ndim == 2 else targets  # mixed: the dominant label
            metrics.update(loss, logits, labels, self.loss_weight(targets))
            self.progress.step(step, metrics.compute)
        if self.scheduler is not None and not self.scheduler_per_batch:
            self.scheduler.step()
        result = metrics.compute(self.strategy.all_reduce)
        if not math.isfinite(result["loss"]):
            bad = torch.nonzero(~torch.isfinite(step_losses)).flatten().tolist()
            raise NonFiniteLoss(epoch, bad[0] + 1 if bad else None, steps)
        return result

    @torch.no_grad()
    def evaluate(self, split: AnySplit, confusion: torch.Tensor | None = None) -> dict[str, float]:
        """Loss and accuracy over ``split`` (every process's share, summed). ``confusion``, a
        ``(classes, classes)`` int64 tensor on the device, is added the counts of (true, predicted)
        pairs, summed over processes."""
        model = self.strategy.unwrap(self.model)
        if self.strategy.world_size > 1:  # one set of batch-norm statistics, the same in every process
            for buffer in model.buffers():
                if buffer.is_floating_point():
                    self.strategy.all_reduce(buffer).div_(self.strategy.world_size)
        model.eval()
        metrics = RunningMetrics(self.device)
        for images, labels in self.eval_batches(split):
            with self.precision.autocast():
                logits = model(self.inputs(images))
                loss = self.loss_fn(logits, labels)
            metrics.update(loss, logits, labels, self.loss_weight(labels))
            if confusion is not None:
                classes = confusion.shape[0]
                pairs = labels * classes + logits.argmax(dim=1)
                confusion += torch.bincount(pairs, minlength=classes * classes).view(classes, classes)
        if confusion is not None and self.strategy.world_size > 1:
            self.strategy.all_reduce(confusion)
        return metrics.compute(self.strategy.all_reduce)

    def state_dict(self) -> dict[str, object]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
        }
