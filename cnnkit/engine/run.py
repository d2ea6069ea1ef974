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
from cnnkit.errors import CnnkitError
from cnnkit.plugins import registry
from cnnkit.registry import Entry


class Interrupted(CnnkitError):
    exit_code = 130


@dataclass
class Plan:
    """Everything a config names, looked up before any heavy work starts."""

    config: TrainConfig
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
    check_choice("optimizer", config.optimizer, OPTIMIZERS)
    check_choice("scheduler", config.scheduler, SCHEDULERS)
    load_data, _ = resolve_data(config.data)
    return Plan(
        config=config,
        model=registry("models").get(config.model),
        load_data=load_data,
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


def train(config: TrainConfig, *, bars: bool | None = None) -> TrainResult:
    plan = make_plan(config)
    seed_everything(config.seed)
    device = select_device(config.device)
    progress = Progress(config.epochs, quiet=config.quiet, bars=bars)

    channels, height, width = plan.model.metadata.get("input_size", (3, 224, 224))
    data = plan.load_data(image_size=(height, width), channels=channels, val_split=config.val_split, seed=config.seed)
    mean, std = data.channel_stats()
    data = data.to(device)

    model_kwargs = {"num_classes": len(data.classes), "in_channels": channels}
    model = plan.model.create(**model_kwargs)
    if plan.initializer is not None:
        plan.initializer.create()(model)
    strategy = plan.strategy.create(device=device)
    model = strategy.setup(model)
    optimizer = build_optimizer(
        config.optimizer, model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
        momentum=config.momentum, nesterov=config.nesterov,
    )
    trainer = Trainer(
        model, optimizer, nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
        device=device, mean=mean, std=std, batch_size=config.batch_size, progress=progress,
        augment=_compose(plan.augmentations), seed=config.seed,
    )
    trainer.scheduler, trainer.scheduler_per_batch = build_scheduler(
        config.scheduler, optimizer, epochs=config.epochs, steps_per_epoch=trainer.steps(data.train),
        step_size=config.step_size, gamma=config.gamma,
    )

    run = RunDir.create(config.out, config.name)
    run.write_config({**config.to_dict(), "name": run.name})
    progress.message(
        f"Training {config.model} on {data.source} ({len(data.train)} train / {len(data.val)} val"
        f"{f' / {len(data.test)} test' if data.test is not None else ''} images) on {device}; run: {run.path}"
    )

    def checkpoint(state: dict[str, torch.Tensor], epoch: int, metrics: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "cnnkit_version": __version__,
            "model": {"name": config.model, "kwargs": model_kwargs},
            "classes": list(data.classes),
            "input_size": [channels, height, width],
            "normalization": {"mean": mean, "std": std},
            "data": data.source,
            "config": {**config.to_dict(), "name": run.name},
            "epoch": epoch,
            "metrics": metrics,
            "state_dict": state,
            **extra,
        }

    def save_last(epoch: int, metrics: dict[str, Any]) -> None:
        training_state = {
            "optimizer": optimizer.state_dict(),
            "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else None,
            "rng": {
                "torch": torch.get_rng_state(),
                "shuffle": trainer.shuffle_generator.get_state(),
                "augment": trainer.augment_generator.get_state(),
            },
        }
        save_checkpoint(run.last, checkpoint(strategy.unwrap(model).state_dict(), epoch, metrics, **training_state))

    stopper = EarlyStopping(config.patience)
    history: list[dict[str, float]] = []
    best_state: dict[str, torch.Tensor] | None = None
    try:
        for epoch in range(1, config.epochs + 1):
            started, lr = time.perf_counter(), trainer.lr
            train_metrics = trainer.train_epoch(data.train, epoch)
            val_metrics = trainer.evaluate(data.val)
            row = {
                "epoch": epoch,
                "train_loss": train_metrics["loss"], "train_acc": train_metrics["acc"],
                "val_loss": val_metrics["loss"], "val_acc": val_metrics["acc"],
                "lr": lr, "seconds": time.perf_counter() - started,
            }
            history.append(row)
            if stopper.step(epoch, row["val_loss"]):
                best_state = _copy_state(strategy.unwrap(model))
                save_checkpoint(run.best, checkpoint(best_state, epoch, row))
            save_last(epoch, row)
            run.write_metrics(history)
            progress.end_epoch(row)
            if stopper.should_stop:
                progress.message(f"Early stop: validation loss has not improved for {config.patience} epochs.")
                break
    except KeyboardInterrupt:
        progress.close()
        save_last(len(history), history[-1] if history else {})
        if history:
            run.write_metrics(history)
            plot_curves(history, run.curves, title=f"{config.model} on {config.data}")
        raise Interrupted(f"Interrupted after {len(history)} epoch(s); saved {run.last}") from None

    if best_state is None:
        raise CnnkitError(f"Validation loss was never finite; try a lower --lr. Run directory: {run.path}")
    strategy.unwrap(model).load_state_dict(best_state)
    test_metrics = trainer.evaluate(data.test) if data.test is not None else None
    best_row = history[stopper.best_epoch - 1]
    save_checkpoint(run.best, checkpoint(best_state, stopper.best_epoch, {**best_row, "test": test_metrics}))
    plot_curves(history, run.curves, title=f"{config.model} on {config.data}")
    return TrainResult(
        run_dir=run.path,
        best_epoch=stopper.best_epoch,
        best={"val_loss": best_row["val_loss"], "val_acc": best_row["val_acc"]},
        test=test_metrics,
        history=history,
        stopped_early=stopper.should_stop,
    )
