"""The ``cnnkit train`` recipe: a strategy first, then the run's parts (:mod:`cnnkit.recipe.build`),
its directory, and the epochs (:mod:`cnnkit.recipe.fit`).

:func:`train` is the entry point. It runs the plan in this process, or, for a distributed
strategy outside its workers, launches the workers (each of which runs :func:`train` again).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from cnnkit.contracts._strategies import Strategy, StrategyOptions
from cnnkit.engine.launch import die_with_launcher
from cnnkit.engine.signals import Interrupted, interrupts_as_exceptions
from cnnkit.engine.strategies import in_launched_worker, launched_world_size
from cnnkit.errors import CnnkitError, UsageError
from cnnkit.models.init import check_fine_tuning
from cnnkit.options import DISTRIBUTED_ONLY, TrainConfig, flags_set
from cnnkit.recipe.build import build_parts
from cnnkit.recipe.fit import TrainingRun, TrainResult
from cnnkit.recipe.observers import Observers
from cnnkit.recipe.parts import FitState
from cnnkit.recipe.plan import Plan, make_plan
from cnnkit.recipe.rundir import RunDir
from cnnkit.recipe.state import read_last
from cnnkit.registry import Entry


def strategy_options(config: TrainConfig) -> StrategyOptions:
    return StrategyOptions(
        device=config.device, sync_bn=config.sync_bn, nproc_per_node=config.nproc_per_node,
        nnodes=config.nnodes, node_rank=config.node_rank, rdzv_endpoint=config.rdzv_endpoint,
        rdzv_timeout=config.rdzv_timeout,
    )


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
    unused = flags_set(config, DISTRIBUTED_ONLY)
    if unused and not strategy.distributed:
        flags = ", ".join(unused)
        verb = "applies" if len(unused) == 1 else "apply"
        raise UsageError(f"{flags} only {verb} to --strategy ddp (this run is '{strategy.name}'); pass --strategy ddp or drop them.")
    return strategy


def new_run_dir(config: TrainConfig, strategy: Strategy, state: FitState) -> None:
    """Make and lock a new run's directory (the main process), and give every process its name."""
    if strategy.is_main:
        made = RunDir.create(config.out, config.name)
        state.run_dir = made  # from here on, the run releases it however it ends
        made.lock()
    mine = str(state.directory.path) if strategy.is_main else ""
    [path] = strategy.all_gather_object(mine)[:1]
    state.run_dir = RunDir(Path(str(path)))  # every process names rank 0's directory


def start_run(config: TrainConfig, plan: Plan, strategy: Strategy, state: FitState, *, bars: bool | None = None,
              observers: Observers | None = None) -> TrainingRun:
    """A run in this process, built and with its directory open: a resumed run's directory is
    claimed before anything is built (a new one is made once the parts are), its ``last.pt`` read
    once, for building (a fine-tuning run's decisions and weights) and for restoring."""
    saved = None
    if config.resume:
        run_dir = state.directory
        if strategy.is_main:
            run_dir.lock()
        saved = read_last(run_dir, config.backbone, config.model)
    parts = build_parts(config, plan, strategy, bars=bars, saved=saved)
    if not config.resume:
        new_run_dir(config, strategy, state)
    return TrainingRun(parts, state, observers).start(saved)


@contextlib.contextmanager
def failure_recorded(state: FitState, is_main: bool) -> Iterator[None]:
    """Around the epochs: an error that ends the run is recorded in its ``status.json`` (the main
    process), so ``cnnkit runs`` can tell it from an interruption, which leaves the same files. A
    record an earlier attempt left goes first: this attempt's ending is what counts. Interruptions
    are not recorded (``last.pt`` tells them), nor are finished runs (``best.pt`` tells them)."""
    if is_main:
        with contextlib.suppress(OSError):
            state.directory.status.unlink(missing_ok=True)
    try:
        yield
    except Interrupted:
        raise
    except Exception as exc:
        if is_main:
            record_failure(state.directory, exc, len(state.history))
        raise


def record_failure(run_dir: RunDir, exc: Exception, epochs_done: int) -> None:
    """Best effort: a record that cannot be written (a full disk is a common reason to fail) is left
    out quietly, so the error on its way stays the one reported; the run then reads as interrupted."""
    error = str(exc) if isinstance(exc, CnnkitError) else f"{type(exc).__name__}: {exc}"
    record = {"status": "failed", "error": error, "epochs_done": epochs_done, "ended": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with contextlib.suppress(CnnkitError, OSError):
        run_dir.write_status(record)


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
    observers = Observers.make(plan.callbacks, config) if strategy.is_main else Observers()
    if strategy.distributed and not in_launched_worker():
        launch(config, strategy)  # the callbacks were made as a check: the main worker makes its own
        return None
    die_with_launcher()
    state = FitState(config)
    try:
        with interrupts_as_exceptions():
            strategy.setup()
            run = start_run(config, plan, strategy, state, bars=bars, observers=observers)
        with failure_recorded(state, strategy.is_main), observers.watching(run.parts, state):
            result = run.fit()
        strategy.barrier()  # leave together: a process that tears down early can abort the others
    finally:
        if strategy.is_main and state.run_dir is not None:
            state.run_dir.unlock()
        strategy.teardown()
    return result if strategy.is_main else None
