"""The ``cnnkit train`` recipe: resolve every name first, then build data, model and optimizer,
fit with early stopping, test the best weights and fill the run directory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from cnnkit import __version__
from cnnkit.config import TrainConfig
from cnnkit.data.resolve import resolve_data
from cnnkit.engine.checkpoint import save_checkpoint
from cnnkit.engine.device import select_device
from cnnkit.engine.early_stopping import EarlyStopping
from cnnkit.engine.optim import OPTIMIZERS, SCHEDULERS, build_optimizer, build_scheduler, check_choice
from cnnkit.engine.plots import plot_curves
from cnnkit.engine.progress import Progress
from cnnkit.engine.rundir import RunDir
from cnnkit.engine.seeding import seed_everything
from cnnkit.engine.trainer import Trainer
from cnnkit.errors import CnnkitError, UsageError
from cnnkit.plugins import registry
from cnnkit.registry import Entry


class Interrupted(CnnkitError):
    exit_code = 130


@dataclass
class Plan:
    """Everything a config names, looked up before any heavy work starts."""

    model: Entry
    load_data: Callable[..., Any]
    augmentations: list[Entry]
    initializer: Entry | None
    strategy: Entry


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    best: dict[str, float]
    test: dict[str, float] | None
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False


def make_plan(config: TrainConfig) -> Plan:
    if Path(config.name).name != config.name or config.name in (".", ".."):
        raise UsageError(f"--name '{config.name}' must be a plain folder name; use --out for the folder that holds runs.")
    check_choice("optimizer", config.optimizer, OPTIMIZERS)
    check_choice("scheduler", config.scheduler, SCHEDULERS)
    return Plan(
        model=registry("models").get(config.model),
        load_data=resolve_data(config.data),
        augmentations=[registry("augmentations").get(name) for name in config.augmentations],
        initializer=registry("initializers").get(config.init) if config.init else None,
        strategy=registry("strategies").get(config.strategy),
    )


def _compose(augmentations: list[Entry]):
    if not augmentations:
        return None
    from cnnkit.data.augment import compose

    return compose([entry.create() for entry in augmentations])


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


class TrainingRun:
    """One ``cnnkit train`` run: everything built up front, then ``fit()`` epoch by epoch."""

    def __init__(self, config: TrainConfig, *, bars: bool | None = None):
        plan = make_plan(config)
        seed_everything(config.seed)
        self.config = config
        self.device = select_device(config.device)
        self.progress = Progress(config.epochs, quiet=config.quiet, bars=bars)

        self.input_size = list(plan.model.metadata.get("input_size", (3, 224, 224)))
        channels, height, width = self.input_size
        data = plan.load_data(image_size=(height, width), channels=channels, val_split=config.val_split, seed=config.seed)
        self.mean, self.std = data.channel_stats()
        self.data = data.to(self.device)

        self.model_kwargs = {"num_classes": len(data.classes), "in_channels": channels}
        model = plan.model.create(**self.model_kwargs)
        if plan.initializer is not None:
            plan.initializer.create()(model)
        self.strategy = plan.strategy.create(device=self.device)
        self.model = self.strategy.setup(model)
        self.trainer = self._build_trainer(plan)

        self.run_dir = RunDir.create(config.out, config.name)
        self.options = {**config.to_dict(), "name": self.run_dir.name}
        self.run_dir.write_config(self.options)
        self.stopper = EarlyStopping(config.patience)
        self.history: list[dict[str, float]] = []
        self.best_state: dict[str, torch.Tensor] | None = None

    def _build_trainer(self, plan: Plan) -> Trainer:
        config = self.config
        optimizer = build_optimizer(
            config.optimizer, self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
            momentum=config.momentum, nesterov=config.nesterov,
        )
        trainer = Trainer(
            self.model, optimizer, nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
            device=self.device, mean=self.mean, std=self.std, batch_size=config.batch_size,
            progress=self.progress, augment=_compose(plan.augmentations), seed=config.seed,
        )
        trainer.scheduler, trainer.scheduler_per_batch = build_scheduler(
            config.scheduler, optimizer, epochs=config.epochs, steps_per_epoch=trainer.steps(self.data.train),
            step_size=config.step_size, gamma=config.gamma,
        )
        return trainer

    def checkpoint(self, state: dict[str, torch.Tensor], epoch: int, metrics: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """A self-describing checkpoint: enough to rebuild, normalise and label without the config."""
        return {
            "cnnkit_version": __version__,
            "model": {"name": self.config.model, "kwargs": self.model_kwargs},
            "classes": list(self.data.classes),
            "input_size": self.input_size,
            "normalization": {"mean": self.mean, "std": self.std},
            "data": self.data.source,
            "config": self.options,
            "epoch": epoch,
            "metrics": metrics,
            "state_dict": state,
            **extra,
        }

    def save_last(self, epoch: int, metrics: dict[str, Any], *, interrupted: bool = False) -> None:
        """``last.pt``: the current weights plus what a resume needs (optimizer, schedule, generators).

        ``epoch`` counts finished epochs; ``interrupted`` marks weights saved part-way through the next.
        """
        trainer = self.trainer
        training_state = {
            "interrupted": interrupted,
            "optimizer": trainer.optimizer.state_dict(),
            "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else None,
            "rng": {
                "torch": torch.get_rng_state(),
                "shuffle": trainer.shuffle_generator.get_state(),
                "augment": trainer.augment_generator.get_state(),
            },
        }
        state = self.strategy.unwrap(self.model).state_dict()
        save_checkpoint(self.run_dir.last, self.checkpoint(state, epoch, metrics, **training_state))

    def run_epoch(self, epoch: int) -> dict[str, float]:
        started, lr = time.perf_counter(), self.trainer.lr
        train_metrics = self.trainer.train_epoch(self.data.train, epoch)
        val_metrics = self.trainer.evaluate(self.data.val)
        return {
            "epoch": epoch,
            "train_loss": train_metrics["loss"], "train_acc": train_metrics["acc"],
            "val_loss": val_metrics["loss"], "val_acc": val_metrics["acc"],
            "lr": lr, "seconds": time.perf_counter() - started,
        }

    def record(self, row: dict[str, float]) -> None:
        """Keep the epoch's metrics; on a new best, copy the weights and write ``best.pt``."""
        self.history.append(row)
        if self.stopper.step(int(row["epoch"]), row["val_loss"]):
            self.best_state = _copy_state(self.strategy.unwrap(self.model))
            save_checkpoint(self.run_dir.best, self.checkpoint(self.best_state, int(row["epoch"]), row))
        self.save_last(int(row["epoch"]), row)
        self.run_dir.write_metrics(self.history)

    def plot(self) -> None:
        plot_curves(self.history, self.run_dir.curves, title=f"{self.config.model} on {self.config.data}")

    def fit(self) -> TrainResult:
        data = self.data
        sizes = f"{len(data.train)} train / {len(data.val)} val" + (f" / {len(data.test)} test" if data.test is not None else "")
        self.progress.message(
            f"Training {self.config.model} on {data.source} ({sizes} images) on {self.device}; run: {self.run_dir.path}"
        )
        try:
            for epoch in range(1, self.config.epochs + 1):
                row = self.run_epoch(epoch)
                self.record(row)
                self.progress.end_epoch(row)
                if self.stopper.should_stop:
                    self.progress.message(f"Early stop: validation loss has not improved for {self.config.patience} epochs.")
                    break
        except KeyboardInterrupt:
            self.interrupted()
        return self.finish()

    def interrupted(self) -> None:
        self.progress.close()
        self.save_last(len(self.history), self.history[-1] if self.history else {}, interrupted=True)
        if self.history:
            self.plot()
        raise Interrupted(f"Interrupted after {len(self.history)} epoch(s); saved {self.run_dir.last}")

    def finish(self) -> TrainResult:
        """Restore the best weights, score them on the test split, and write the final files."""
        if self.best_state is None:
            raise CnnkitError(f"Validation loss was never finite; try a lower --lr. Run directory: {self.run_dir.path}")
        self.strategy.unwrap(self.model).load_state_dict(self.best_state)
        test = self.trainer.evaluate(self.data.test) if self.data.test is not None else None
        best_row = self.history[self.stopper.best_epoch - 1]
        save_checkpoint(self.run_dir.best, self.checkpoint(self.best_state, self.stopper.best_epoch, {**best_row, "test": test}))
        self.plot()
        return TrainResult(
            run_dir=self.run_dir.path,
            best_epoch=self.stopper.best_epoch,
            best={"val_loss": best_row["val_loss"], "val_acc": best_row["val_acc"]},
            test=test,
            history=self.history,
            stopped_early=self.stopper.should_stop,
        )


def train(config: TrainConfig, *, bars: bool | None = None) -> TrainResult:
    return TrainingRun(config, bars=bars).fit()
