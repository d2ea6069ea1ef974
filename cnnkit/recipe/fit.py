"""The fit driver: epochs with early stopping, ``last.pt`` at every epoch boundary, ``best.pt`` on
each new best, and at the end the best weights scored on the test split.

A :class:`TrainingRun` drives a built run (:class:`~cnnkit.recipe.parts.RunParts`) whose
directory is open; what changes as it trains is its :class:`~cnnkit.recipe.parts.FitState`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnkit.console import warn
from cnnkit.data.streaming import unreadable
from cnnkit.engine.plots import plot_curves
from cnnkit.engine.signals import Interrupted, interrupts_as_exceptions, signals_ignored
from cnnkit.engine.trainer import NonFiniteLoss
from cnnkit.errors import CnnkitError
from cnnkit.recipe import state as run_state
from cnnkit.recipe.observers import Observers
from cnnkit.recipe.parts import FitState, RunParts


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    best: dict[str, float]
    test: dict[str, float] | None
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False
    skipped: list[str] = field(default_factory=list)
    """``"file: reason"`` for every sample left out because it could not be read."""


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


class TrainingRun:
    """Trains a built run epoch by epoch, in a run directory already open: ``start()`` (a new
    run's first ``last.pt``, or a resumed run's state restored), then ``fit()``; ``observers``
    (the ``--log`` callbacks, in the main process) are told as it goes."""

    def __init__(self, parts: RunParts, state: FitState, observers: Observers | None = None):
        self.parts = parts
        self.state = state
        self.observers = observers or Observers()
        self.options: dict[str, Any] = parts.record(state.directory.name)
        """The run's record, as config.json and every checkpoint hold it."""

    @property
    def is_main(self) -> bool:
        return self.parts.strategy.is_main

    def start(self, saved: dict[str, Any] | None = None) -> TrainingRun:
        """Write config.json, and a new run's ``last.pt``; a resumed run (``saved``: its
        ``last.pt``) first gets every state back."""
        run_dir = self.state.directory
        if saved is not None:
            run_state.restore(self.parts, self.state, saved, run_dir.last)
            if self.is_main:
                run_dir.remove_stale_temporaries()
                run_dir.write_metrics(self.state.history)
        if self.is_main:
            run_dir.write_config(self.options)
        if saved is None:
            self.save_last()
        self.observers.run_started(self.parts, self.state, self.options)
        return self

    def save_last(self) -> None:
        """``last.pt`` at an epoch boundary: everything a resume restores (all processes take part)."""
        payload = run_state.capture(self.parts, self.state)
        if self.is_main:
            run_state.save(self.parts, self.state, self.options, payload)
        self.state.saved_epoch = len(self.state.history)

    def run_epoch(self, epoch: int) -> dict[str, float]:
        parts = self.parts
        if parts.transfer is not None:
            parts.transfer.at_epoch(epoch)
        started, lr = time.perf_counter(), parts.trainer.lr
        train_metrics = parts.trainer.train_epoch(parts.data.train, epoch)
        val_metrics = parts.trainer.evaluate(parts.data.val)
        if not math.isfinite(val_metrics["loss"]):
            raise NonFiniteLoss(epoch, None, 0)
        return {
            "epoch": epoch,
            "train_loss": train_metrics["loss"], "train_acc": train_metrics["acc"],
            "val_loss": val_metrics["loss"], "val_acc": val_metrics["acc"],
            "lr": lr, "seconds": time.perf_counter() - started,
        }

    def record(self, row: dict[str, float]) -> Path | None:
        """Keep the epoch's metrics and state; ``last.pt`` first, then ``best.pt`` on a new best
        (its path is returned, in the main process)."""
        state = self.state
        state.history.append(row)
        improved = state.stopper.step(int(row["epoch"]), row["val_loss"])
        if improved:
            state.best_state = _copy_state(self.parts.strategy.unwrap(self.parts.model))
        self.save_last()
        best = None
        if self.is_main:
            if improved and state.best_state is not None:
                best = state.directory.best
                run_state.save_best(self.parts, self.options, best, state.best_state, int(row["epoch"]), row)
            state.directory.write_metrics(state.history)
        return best

    def plot(self) -> None:
        if self.is_main and self.state.history:
            title = f"{self.parts.model_name} on {self.parts.config.data}"
            plot_curves(self.state.history, self.state.directory.curves, title=title)

    def announce(self) -> None:
        """One line: what trains on what, where, and the run directory."""
        parts, data = self.parts, self.parts.data
        sizes = f"{len(data.train)} train / {len(data.val)} val" + (f" / {len(data.test)} test" if data.test is not None else "")
        sizes += " images" + (f", {len(data.skipped)} unreadable file(s) skipped" if data.skipped else "")
        world = parts.strategy.world_size
        processes = f" x {world} processes" if world > 1 else ""
        verb = f"Resuming at epoch {len(self.state.history) + 1}:" if parts.config.resume else "Training"
        parts.progress.message(
            f"{verb} {parts.model_name} on {data.source} ({sizes}) on {parts.strategy.device}{processes}, "
            f"{parts.precision.name}{', channels-last' if parts.channels_last else ''}; run: {self.state.directory.path}"
        )

    def fit(self) -> TrainResult:
        self.announce()
        config, state, progress = self.parts.config, self.state, self.parts.progress
        try:
            with interrupts_as_exceptions():
                for epoch in range(len(state.history) + 1, config.epochs + 1):
                    if state.stopper.should_stop:
                        break
                    row = self.run_epoch(epoch)
                    best = self.record(row)
                    progress.end_epoch(row)
                    self.observers.epoch_ended(row, best)
                    if state.stopper.should_stop:
                        progress.message(f"Early stop: validation loss has not improved for {config.patience} epochs.")
                return self.finish()
        except NonFiniteLoss as exc:
            progress.close()
            self.plot_if_possible()
            raise CnnkitError(f"{exc}; {self.likely_causes()}. last.pt keeps epoch {state.saved_epoch}; "
                              f"run: {state.directory.path}") from None
        except Interrupted as exc:
            with signals_ignored():  # a second Ctrl-C must not cut the clean-up short
                progress.close()
                self.plot_if_possible()
            exc.add_context(state.saved_epoch, state.directory.path)
            raise

    def plot_if_possible(self) -> None:
        """The curves while another error is on its way: a failure here must not replace it."""
        try:
            self.plot()
        except CnnkitError as exc:
            warn(f"the curves were not written: {exc}")

    def likely_causes(self) -> str:
        config = self.parts.config
        causes = [f"a learning rate too high for this model (--lr {config.lr:g}; try {config.lr / 10:g})"]
        if config.weight_decay >= 1:
            causes.append(f"a weight decay this large (--weight-decay {config.weight_decay:g})")
        if config.optimizer == "sgd" and config.momentum >= 1:
            causes.append(f"momentum of 1 or more (--momentum {config.momentum:g})")
        if config.scheduler == "step" and config.gamma > 1:
            causes.append(f"a step schedule that raises the rate (--gamma {config.gamma:g})")
        if self.parts.precision.name == "fp16":
            causes.append("fp16 overflow (try --precision bf16 or fp32)")
        if config.augment:
            causes.append(f"an augmentation that produced NaN (--augment {config.augment})")
        if config.init:
            causes.append(f"the initializer (--init {config.init})")
        causes.append("images or labels that are not what they seem (--data)")
        return "likely causes: " + "; ".join(causes)

    def score_test(self) -> tuple[dict[str, float] | None, tuple[tuple[int, ...], ...] | None]:
        """The test split's metrics, and its confusion matrix when the run logs (``--log``: every
        process counts its share, so all must agree on whether to)."""
        parts = self.parts
        if parts.data.test is None:
            return None, None
        if not parts.config.log:
            return parts.trainer.evaluate(parts.data.test), None
        classes = len(parts.data.classes)
        counts = torch.zeros((classes, classes), dtype=torch.int64, device=parts.strategy.device)
        test = parts.trainer.evaluate(parts.data.test, counts)
        return test, tuple(tuple(row) for row in counts.tolist())

    def finish(self) -> TrainResult:
        """Restore the best weights, score them on the test split, and write the final files."""
        parts, state = self.parts, self.state
        best_state, best_epoch = state.best_state, state.stopper.best_epoch
        if best_state is None:
            raise CnnkitError(f"Validation loss was never finite; try a lower --lr. Run directory: {state.directory.path}")
        parts.strategy.unwrap(parts.model).load_state_dict(best_state)
        test, confusion = self.score_test()
        best_row = state.history[best_epoch - 1]
        if self.is_main:
            run_state.save_best(parts, self.options, state.directory.best, best_state, best_epoch, {**best_row, "test": test})
        self.plot()
        self.observers.finished(parts, state, test, confusion)
        return TrainResult(
            run_dir=state.directory.path,
            best_epoch=best_epoch,
            best={"val_loss": best_row["val_loss"], "val_acc": best_row["val_acc"]},
            test=test,
            history=state.history,
            stopped_early=state.stopper.should_stop,
            skipped=sorted({f"{name}: {why}" for name, why in parts.data.skipped} | set(unreadable())),
        )
