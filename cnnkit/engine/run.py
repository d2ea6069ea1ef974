"""The ``cnnkit train`` recipe: a strategy first, then data, model and optimizer, then epochs with
early stopping, a checkpoint at every epoch boundary, and the best weights scored on the test split.

:func:`train` is the entry point. It runs the plan in this process, or, for a distributed
strategy outside its workers, launches the workers (each of which runs :func:`train` again).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from cnnkit.config import TrainConfig
from cnnkit.console import warn
from cnnkit.contracts import DataRequest, Strategy, StrategyOptions
from cnnkit.data.splits import channel_stats
from cnnkit.data.streaming import auto_workers, unreadable
from cnnkit.engine import state as run_state
from cnnkit.engine.data_setup import eval_crop, load_data, prepare_augmentation
from cnnkit.engine.early_stopping import EarlyStopping
from cnnkit.engine.launch import die_with_launcher
from cnnkit.engine.model_check import build_model
from cnnkit.engine.optim import ONECYCLE_MIN_STEPS, build_optimizer, build_scheduler, param_groups
from cnnkit.engine.plan import Plan, checked_input_size, from_plugin, make_plan
from cnnkit.engine.plots import plot_curves
from cnnkit.engine.precision import Precision, resolve_channels_last, resolve_precision
from cnnkit.engine.progress import Progress
from cnnkit.engine.rundir import RunDir
from cnnkit.engine.seeding import configure_determinism, derive_seed, resolve_deterministic, seed_everything
from cnnkit.engine.signals import Interrupted, interrupts_as_exceptions, signals_ignored
from cnnkit.engine.strategies import in_launched_worker, launched_world_size
from cnnkit.engine.trainer import NonFiniteLoss, Trainer
from cnnkit.errors import CnnkitError, UsageError
from cnnkit.models.init import check_fine_tuning, first_batch, initialize, needs_batch
from cnnkit.registry import Entry
from cnnkit.values import parse_image_size, parse_model_kwargs


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


def strategy_options(config: TrainConfig) -> StrategyOptions:
    return StrategyOptions(
        device=config.device, sync_bn=config.sync_bn, nproc_per_node=config.nproc_per_node,
        nnodes=config.nnodes, node_rank=config.node_rank, rdzv_endpoint=config.rdzv_endpoint,
        rdzv_timeout=config.rdzv_timeout,
    )


DISTRIBUTED_ONLY = {"nproc_per_node": 0, "nnodes": 1, "node_rank": -1, "rdzv_endpoint": "", "rdzv_timeout": 300, "sync_bn": False}


def create_strategy(entry: Entry, config: TrainConfig) -> Strategy:
    strategy: Strategy = entry.create(strategy_options(config))  # the registry checks it is a Strategy
    if launched_world_size() > 1 and not strategy.distributed:
        raise UsageError(
            f"cnnkit was started with {launched_world_size()} processes (torchrun), but --strategy "
            f"{config.strategy} runs in one; pass --strategy ddp, or run without torchrun."
        )
    if strategy.distributed and config.unfreeze_at:
        raise UsageError("--unfreeze-at does not work with --strategy ddp yet (DDP would not average the thawed layers' "
                         "gradients); train in one process, or use --freeze N without --unfreeze-at.")
    unused = [name for name, default in DISTRIBUTED_ONLY.items() if getattr(config, name) != default]
    if unused and not strategy.distributed:
        flags = ", ".join("--" + name.replace("_", "-") for name in unused)
        raise UsageError(f"{flags} only {'applies' if len(unused) == 1 else 'apply'} to --strategy ddp (this run is '{strategy.name}'); pass --strategy ddp or drop them.")
    return strategy


class TrainingRun:
    """One training run in this process. The constructor only stores its parts; ``build()`` makes
    data, model and optimizer, ``start()`` opens the run directory (new, or resumed), ``fit()``
    trains epoch by epoch."""

    def __init__(self, config: TrainConfig, plan: Plan, strategy: Strategy, *, bars: bool | None = None):
        self.config = config
        self.saved_epoch = 0
        if config.resume:
            self.run_dir = RunDir(Path(config.resume))
        self.plan = plan
        self.strategy = strategy
        self.bars = bars
        self.stopper = EarlyStopping(config.patience)
        self.history: list[dict[str, float]] = []
        self.best_state: dict[str, torch.Tensor] | None = None

    def build(self) -> TrainingRun:
        config, plan, strategy = self.config, self.plan, self.strategy
        device = strategy.device
        self.deterministic = resolve_deterministic(config.deterministic, device)
        configure_determinism(self.deterministic, device)
        self.precision = Precision(resolve_precision(config.precision, device), device)
        self.channels_last = resolve_channels_last(config.channels_last, self.precision.name, device)
        seed_everything(config.seed)
        self.progress = Progress(config.epochs, quiet=config.quiet or not strategy.is_main, bars=self.bars)

        pretrained = None
        if config.backbone:
            from cnnkit.transfer.setup import load_pretrained

            pretrained = load_pretrained(plan.model, config, run_state.read_last(self))
            native = pretrained.preprocessing.input_size
        else:
            native = checked_input_size(plan.model)
        self.input_size = [native[0], *(parse_image_size(config.image_size) or native[1:])]
        channels, height, width = self.input_size
        prep = pretrained.preprocessing if pretrained is not None else None
        request = DataRequest(
            image_size=(height, width), channels=channels, val_split=config.val_split, seed=config.seed,
            data_dir=config.data_dir, crop_fraction=prep.crop_fraction if prep else 1.0,
            interpolation=prep.interpolation if prep else "bilinear",
        )
        self.read_as = {"crop_fraction": eval_crop(plan.augment, request), "interpolation": request.interpolation}
        self.workers = auto_workers() if config.workers is None else config.workers
        data = load_data(plan, request, strategy.world_size, config, self.input_size, self.workers)
        if prep is not None and prep.mean:
            self.mean, self.std = list(prep.mean), list(prep.std)  # the statistics the weights were trained with
        elif data.mean is not None and data.std is not None:
            self.mean, self.std = list(data.mean), list(data.std)
        else:
            self.mean, self.std = channel_stats(data.train, derive_seed(config.seed, "stats"), self.workers)
        fixed_size = data  # before augmentation may swap the training images for their originals
        data, self.sample_augment, self.batch_augment = prepare_augmentation(plan.augment, config, data, self.input_size)
        self.data = data.to(device)

        self.model_kwargs = {"num_classes": len(data.classes), "in_channels": channels, **parse_model_kwargs(config.model_kwargs)}
        self.transfer = None
        if pretrained is not None:
            from cnnkit.transfer.setup import Transfer

            self.transfer = Transfer.build(pretrained, len(data.classes), config, fixed_size, self.input_size, run_state.read_last(self))
            model, self.model_name = self.transfer.model, self.transfer.model_name
            self.model_kwargs = {**self.transfer.model_kwargs, "num_classes": len(data.classes)}
            self.progress.message(f"Fine-tuning {self.transfer.describe()}")
        else:
            model, self.model_name = build_model(plan.model, self.model_kwargs, self.input_size), config.model
        if plan.initializer is not None and not (config.resume and needs_batch(plan.initializer)):
            target = self.transfer.head_module() if self.transfer is not None else model  # never over pretrained weights
            batch = first_batch(
                fixed_size.train, batch_size=config.batch_size, shuffle_seed=derive_seed(config.seed, "shuffle"), device=device,
                mean=self.mean, std=self.std, channels_last=self.channels_last, workers=self.workers,
            ) if needs_batch(plan.initializer) else None  # every process the same batch: the same weights
            from_plugin(plan.initializer, lambda: initialize(plan.initializer, target, batch))
        if config.init_bias is not None:
            from cnnkit.models.init import fill_biases

            fill_biases(self.transfer.head_module() if self.transfer is not None else model, config.init_bias)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = strategy.wrap(model)
        torch.manual_seed(derive_seed(config.seed, "torch", strategy.rank))  # dropout differs per process
        self.forward = torch.compile(self.model) if config.compile else self.model
        self.trainer = self._build_trainer()
        if self.transfer is not None:
            from cnnkit.transfer.features import cache

            cache(self)
        return self

    def _build_trainer(self) -> Trainer:
        config, strategy = self.config, self.strategy
        if self.transfer is not None:
            groups = self.transfer.param_groups(config.weight_decay, config.lr, self.transfer.lr_mult(config))
        else:
            groups = param_groups(strategy.unwrap(self.model), config.weight_decay)
        optimizer = build_optimizer(
            config.optimizer, groups, lr=config.lr,
            weight_decay=config.weight_decay, momentum=config.momentum, nesterov=config.nesterov,
        )
        trainer = Trainer(
            self.forward, optimizer, nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
            strategy=strategy, precision=self.precision, mean=self.mean, std=self.std,
            batch_size=config.batch_size, progress=self.progress, num_classes=len(self.data.classes),
            sample_augment=self.sample_augment, batch_augment=self.batch_augment, workers=self.workers,
            on_train_mode=self.transfer.keep_frozen_in_eval if self.transfer is not None else None,
            shuffle_seed=derive_seed(config.seed, "shuffle"),
            augment_seed=derive_seed(config.seed, "augment", strategy.rank),
            channels_last=self.channels_last,
        )
        steps_per_epoch = trainer.steps(self.data.train)
        trainer.scheduler, trainer.scheduler_per_batch = build_scheduler(
            config.scheduler, optimizer, epochs=config.epochs, steps_per_epoch=steps_per_epoch,
            step_size=config.step_size, gamma=config.gamma,
        )
        if config.scheduler == "onecycle" and config.epochs * steps_per_epoch < ONECYCLE_MIN_STEPS:
            warn(
                f"--scheduler onecycle over {config.epochs * steps_per_epoch} step(s) "
                f"({config.epochs} epoch(s) x {steps_per_epoch} batch(es)) spends them warming up and annealing, "
                "at tiny learning rates; train for more steps, or use --scheduler cosine or none."
            )
        return trainer

    @property
    def resolved(self) -> dict[str, object]:
        """The choices ``auto`` options resolved to, recorded in config.json and checkpoints."""
        resolved = {
            "strategy": self.strategy.name,
            "device": str(self.strategy.device),
            "precision": self.precision.name,
            "channels_last": self.channels_last,
            "deterministic": self.deterministic,
        }
        if self.strategy.distributed:  # what the launcher (cnnkit's or torchrun) really started
            per_node = int(os.environ.get("LOCAL_WORLD_SIZE", self.strategy.world_size))
            resolved.update(nproc_per_node=per_node, nnodes=max(1, self.strategy.world_size // per_node))
        return resolved

    def start(self) -> TrainingRun:
        """Open the run directory: a new one, or the resumed one with every state restored."""
        config = self.config
        if config.resume:
            run_state.restore(self, self.run_dir.last)
            if self.strategy.is_main:
                self.run_dir.remove_stale_temporaries()
                self.run_dir.write_metrics(self.history)
        else:
            if self.strategy.is_main:
                self.run_dir = RunDir.create(config.out, config.name)
                self.run_dir.lock()
            [path] = self.strategy.all_gather_object(str(self.run_dir.path) if self.strategy.is_main else "")[:1]
            self.run_dir = RunDir(Path(path))  # every process names rank 0's directory
        self.options = {**config.to_dict(), **self.resolved, "name": self.run_dir.name, "resume": ""}
        if self.strategy.is_main:
            self.run_dir.write_config(self.options)
        if not config.resume:
            self.save_last()
        return self

    def claim(self) -> TrainingRun:
        """Lock the directory of a resumed run before anything is built (a new one is locked as it
        is made, in ``start()``)."""
        if self.config.resume and self.strategy.is_main:
            self.run_dir.lock()
        return self

    def save_last(self) -> None:
        """``last.pt`` at an epoch boundary: everything a resume restores (all processes take part)."""
        payload = run_state.capture(self)
        if self.strategy.is_main:
            run_state.save(self, payload)
        self.saved_epoch = len(self.history)

    def run_epoch(self, epoch: int) -> dict[str, float]:
        if self.transfer is not None:
            self.transfer.at_epoch(epoch)
        started, lr = time.perf_counter(), self.trainer.lr
        train_metrics = self.trainer.train_epoch(self.data.train, epoch)
        val_metrics = self.trainer.evaluate(self.data.val)
        if not math.isfinite(val_metrics["loss"]):
            raise NonFiniteLoss(epoch, None, 0)
        return {
            "epoch": epoch,
            "train_loss": train_metrics["loss"], "train_acc": train_metrics["acc"],
            "val_loss": val_metrics["loss"], "val_acc": val_metrics["acc"],
            "lr": lr, "seconds": time.perf_counter() - started,
        }

    def record(self, row: dict[str, float]) -> None:
        """Keep the epoch's metrics and state; ``last.pt`` first, then ``best.pt`` on a new best."""
        self.history.append(row)
        improved = self.stopper.step(int(row["epoch"]), row["val_loss"])
        if improved:
            self.best_state = _copy_state(self.strategy.unwrap(self.model))
        self.save_last()
        if self.strategy.is_main:
            if improved:
                run_state.save_best(self, self.best_state, int(row["epoch"]), row)
            self.run_dir.write_metrics(self.history)

    def plot(self) -> None:
        if self.strategy.is_main and self.history:
            plot_curves(self.history, self.run_dir.curves, title=f"{self.model_name} on {self.config.data}")

    def fit(self) -> TrainResult:
        data, config = self.data, self.config
        sizes = f"{len(data.train)} train / {len(data.val)} val" + (f" / {len(data.test)} test" if data.test is not None else "")
        sizes += " images" + (f", {len(data.skipped)} unreadable file(s) skipped" if data.skipped else "")
        processes = f" x {self.strategy.world_size} processes" if self.strategy.world_size > 1 else ""
        verb = f"Resuming at epoch {len(self.history) + 1}:" if config.resume else "Training"
        self.progress.message(
            f"{verb} {self.model_name} on {data.source} ({sizes}) on {self.strategy.device}{processes}, "
            f"{self.precision.name}{', channels-last' if self.channels_last else ''}; run: {self.run_dir.path}"
        )
        try:
            with interrupts_as_exceptions():
                for epoch in range(len(self.history) + 1, config.epochs + 1):
                    if self.stopper.should_stop:
                        break
                    row = self.run_epoch(epoch)
                    self.record(row)
                    self.progress.end_epoch(row)
                    if self.stopper.should_stop:
                        self.progress.message(f"Early stop: validation loss has not improved for {config.patience} epochs.")
                return self.finish()
        except NonFiniteLoss as exc:
            self.progress.close()
            self.plot_if_possible()
            raise CnnkitError(f"{exc}; {self.likely_causes()}. last.pt keeps epoch {self.saved_epoch}; run: {self.run_dir.path}") from None
        except Interrupted as exc:
            with signals_ignored():  # a second Ctrl-C must not cut the clean-up short
                self.progress.close()
                self.plot_if_possible()
            exc.add_context(self.saved_epoch, self.run_dir.path)
            raise

    def plot_if_possible(self) -> None:
        """The curves while another error is on its way: a failure here must not replace it."""
        try:
            self.plot()
        except CnnkitError as exc:
            warn(f"the curves were not written: {exc}")

    def close(self) -> None:
        """Release the run directory (whatever happened since ``start()``)."""
        if self.strategy.is_main and hasattr(self, "run_dir"):
            self.run_dir.unlock()

    def likely_causes(self) -> str:
        config = self.config
        causes = [f"a learning rate too high for this model (--lr {config.lr:g}; try {config.lr / 10:g})"]
        if config.weight_decay >= 1:
            causes.append(f"a weight decay this large (--weight-decay {config.weight_decay:g})")
        if config.optimizer == "sgd" and config.momentum >= 1:
            causes.append(f"momentum of 1 or more (--momentum {config.momentum:g})")
        if config.scheduler == "step" and config.gamma > 1:
            causes.append(f"a step schedule that raises the rate (--gamma {config.gamma:g})")
        if self.precision.name == "fp16":
            causes.append("fp16 overflow (try --precision bf16 or fp32)")
        if config.augment:
            causes.append(f"an augmentation that produced NaN (--augment {config.augment})")
        if config.init:
            causes.append(f"the initializer (--init {config.init})")
        causes.append("images or labels that are not what they seem (--data)")
        return "likely causes: " + "; ".join(causes)

    def finish(self) -> TrainResult:
        """Restore the best weights, score them on the test split, and write the final files."""
        if self.best_state is None:
            raise CnnkitError(f"Validation loss was never finite; try a lower --lr. Run directory: {self.run_dir.path}")
        self.strategy.unwrap(self.model).load_state_dict(self.best_state)
        test = self.trainer.evaluate(self.data.test) if self.data.test is not None else None
        best_row = self.history[self.stopper.best_epoch - 1]
        if self.strategy.is_main:
            run_state.save_best(self, self.best_state, self.stopper.best_epoch, {**best_row, "test": test})
        self.plot()
        return TrainResult(
            run_dir=self.run_dir.path,
            best_epoch=self.stopper.best_epoch,
            best={"val_loss": best_row["val_loss"], "val_acc": best_row["val_acc"]},
            test=test,
            history=self.history,
            stopped_early=self.stopper.should_stop,
            skipped=sorted({f"{name}: {why}" for name, why in self.data.skipped} | set(unreadable())),
        )


def launch(config: TrainConfig, strategy: Strategy) -> None:
    """Start the strategy's workers, each running this configuration (resolved here, so every
    worker agrees on names such as the run directory's)."""
    from cnnkit.engine.launch import WorkerFailed, nproc_for

    options = strategy_options(config)
    resolved = replace(
        config, strategy=strategy.name, nproc_per_node=nproc_for(options),
        name=config.name or time.strftime("%Y%m%d-%H%M%S"),
    )
    with tempfile.TemporaryDirectory(prefix="cnnkit-launch-") as folder:
        path = Path(folder) / "config.json"
        path.write_text(json.dumps(resolved.to_dict()))
        try:
            code = strategy.launch(["finetune" if resolved.backbone else "train", "--config", str(path)])
            if code:
                raise WorkerFailed(f"the workers of strategy '{strategy.name}' exited with code {code}", code)
        except Interrupted as exc:
            run_dir = Path(resolved.resume) if resolved.resume else Path(resolved.out) / resolved.name
            if (run_dir / "last.pt").is_file():
                exc.args = (f"Interrupted ({exc.signal_name}); the workers were stopped. Continue with: cnnkit train --resume {run_dir}",)
            raise


def train(config: TrainConfig, *, bars: bool | None = None) -> TrainResult | None:
    """Train as ``config`` says. Returns the result in the main process, None elsewhere (other
    workers, and the process that launched them)."""
    plan = make_plan(config)
    check_fine_tuning(plan.initializer, config.backbone)
    strategy = create_strategy(plan.strategy, config)
    if strategy.distributed and not in_launched_worker():
        launch(config, strategy)
        return None
    die_with_launcher()
    run = TrainingRun(config, plan, strategy, bars=bars)
    try:
        with interrupts_as_exceptions():
            strategy.setup()
            run.claim().build().start()
        result = run.fit()
        strategy.barrier()  # leave together: a process that tears down early can abort the others
    finally:
        run.close()
        strategy.teardown()
    return result if strategy.is_main else None
