"""The run state, saved whole at every epoch boundary (``last.pt``) and restored whole by ``--resume``.

``last.pt`` holds the model, optimizer, scheduler, gradient scaler, early-stopping progress, the
metrics history, and every random generator: the shuffle order's (shared by all processes) and,
for each process, its augmentation, torch (CPU and CUDA), NumPy and Python generators. Epochs
are the unit: a run stopped part-way through an epoch redoes that epoch from its start.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from cnnkit import __version__
from cnnkit.console import note
from cnnkit.engine.checkpoint import load_checkpoint, save_checkpoint
from cnnkit.engine.seeding import rng_state, set_rng_state
from cnnkit.errors import CnnkitError, UsageError

if TYPE_CHECKING:
    from cnnkit.engine.run import TrainingRun


def describe(run: TrainingRun, state: dict[str, torch.Tensor], epoch: int, metrics: dict, **extra: Any) -> dict:
    """A self-describing checkpoint: enough to rebuild, normalise and label without the config."""
    return {
        "cnnkit_version": __version__,
        "model": {"name": run.model_name, "kwargs": run.model_kwargs},
        "classes": list(run.data.classes),
        "input_size": run.input_size,
        "normalization": {"mean": run.mean, "std": run.std},
        "preprocessing": dict(run.read_as),
        "data": run.data.source,
        "config": run.options,
        "epoch": epoch,
        "metrics": metrics,
        "state_dict": state,
        **({"transfer": run.transfer.record()} if run.transfer is not None else {}),
        **extra,
    }


def capture(run: TrainingRun) -> dict[str, Any]:
    """This epoch boundary's state; every process contributes its own generators."""
    trainer, strategy = run.trainer, run.strategy
    mine = {**rng_state(strategy.device), "augment": trainer.augment_generator.get_state(),
            "sample_augment": trainer.sample_generator.get_state()}
    return {
        "world_size": strategy.world_size,
        "early_stopping": run.stopper.state_dict(),
        "history": [dict(row) for row in run.history],
        "rng": {"shuffle": trainer.shuffle_generator.get_state(), "processes": strategy.all_gather_object(mine)},
        **trainer.state_dict(),
    }


def save(run: TrainingRun, payload: dict[str, Any]) -> None:
    epoch = len(run.history)
    metrics = run.history[-1] if run.history else {}
    weights = run.strategy.unwrap(run.model).state_dict()
    save_checkpoint(run.run_dir.last, describe(run, weights, epoch, metrics, **payload))


def save_best(run: TrainingRun, weights: dict[str, torch.Tensor], epoch: int, metrics: dict) -> None:
    save_checkpoint(run.run_dir.best, describe(run, weights, epoch, metrics))


def load_weights(model: torch.nn.Module, saved: dict[str, Any], config) -> None:
    """The weights of a resumed run's ``last.pt`` into ``model``, or one line naming how they do not fit."""
    from cnnkit.engine.checkpoint import state_mismatch

    mismatch = state_mismatch(model.state_dict(), saved["state_dict"])
    if mismatch:
        raise _not_this_run(Path(config.resume) / "last.pt", mismatch)
    model.load_state_dict(saved["state_dict"])


def _not_this_run(path: Path, details: str) -> CnnkitError:
    return CnnkitError(f"'{path}' does not fit this run's model ({details}); put back the run's own last.pt, or start a new run.")


def read_last(run: TrainingRun) -> dict[str, Any] | None:
    """A resumed run's ``last.pt`` (read once; on the CPU: generator states must be CPU tensors),
    refused when it holds another model than the run's config.json names; None for a new run."""
    if not run.config.resume:
        return None
    if getattr(run, "saved", None) is None:
        saved = load_checkpoint(run.run_dir.last)
        theirs = saved.get("config") if isinstance(saved.get("config"), dict) else {}
        their_model, own_model = theirs.get("backbone") or theirs.get("model"), run.config.backbone or run.config.model
        if their_model and their_model != own_model:
            raise _not_this_run(run.run_dir.last, f"it holds a {their_model} model, the run's config.json names {own_model}")
        run.saved = saved
    return run.saved


def restore(run: TrainingRun, path: Path) -> None:
    """Put ``run`` back exactly where ``last.pt`` left it; refuse what cannot continue."""
    strategy, trainer = run.strategy, run.trainer
    saved = read_last(run)
    run.saved = None  # not kept for the whole run
    saved_device = str(saved["config"].get("device", "cpu")).split(":")[0]
    if saved_device != strategy.device.type:
        raise UsageError(
            f"'{path.parent}' was trained on {saved_device} and this run is on {strategy.device.type}; the random "
            f"generators do not carry over between device types. Resume with --device {saved_device}."
        )
    if saved.get("world_size") != strategy.world_size:
        raise UsageError(
            f"'{path.parent}' was trained by {saved.get('world_size')} process(es) and this run has "
            f"{strategy.world_size}; resume it with the same --nproc-per-node and --nnodes."
        )
    done = int(saved["epoch"])
    if run.config.epochs < done:
        raise UsageError(f"'{path.parent}' has finished {done} epochs; --epochs must be at least {done}.")
    run.stopper.load_state_dict(saved["early_stopping"])
    if done >= run.config.epochs or run.stopper.should_stop:
        why = (f"finished {done} of {run.config.epochs} epochs" if done >= run.config.epochs
               else f"stopped early after epoch {done}")
        note(
            f"'{path.parent}' already {why}; scoring its best weights again. To train further, "
            f"pass --epochs N with N > {done}{' and a larger --patience (or 0)' if run.stopper.should_stop else ''}."
        )
    load_weights(strategy.unwrap(run.model), saved, run.config)
    trainer.optimizer.load_state_dict(saved["optimizer"])
    restore_scheduler(run, saved)
    trainer.scaler.load_state_dict(saved["scaler"])
    run.history = [dict(row) for row in saved["history"]]
    run.saved_epoch = done
    rng = saved["rng"]
    trainer.shuffle_generator.set_state(rng["shuffle"])
    mine = rng["processes"][strategy.rank]
    trainer.augment_generator.set_state(mine["augment"])
    if "sample_augment" in mine:
        trainer.sample_generator.set_state(mine["sample_augment"])
    set_rng_state(mine, strategy.device)
    run.best_state = best_weights(run, saved, path.parent / "best.pt")


def restore_scheduler(run: TrainingRun, saved: dict[str, Any]) -> None:
    """The saved schedule. When ``--epochs`` changed, a per-batch schedule (whose length depends on
    the epochs) keeps its step count but takes the new length, and the learning rate jumps to the
    new schedule's value at that step: a finished cosine run extended by a third goes on from
    where a longer run would be, not from the zero it had reached."""
    scheduler, state = run.trainer.scheduler, saved["scheduler"]
    if scheduler is None or state is None:
        return
    if int(saved["config"]["epochs"]) == run.config.epochs or not run.trainer.scheduler_per_batch:
        scheduler.load_state_dict(state)
        return
    length_keys = ("T_max", "total_steps", "_schedule_phases")
    scheduler.load_state_dict({key: value for key, value in state.items() if key not in length_keys})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # get_lr() outside step() warns
        closed_form = getattr(scheduler, "_get_closed_form_lr", None)
        lrs = closed_form() if closed_form is not None else scheduler.get_lr()
    for group, lr in zip(run.trainer.optimizer.param_groups, lrs):
        group["lr"] = lr
    scheduler._last_lr = list(lrs)
    note(
        f"--epochs changed from {saved['config']['epochs']} to {run.config.epochs}; the "
        f"{run.config.scheduler} schedule now spans the new length and goes on from step "
        f"{scheduler.last_epoch} at lr {lrs[0]:.2e}."
    )


def best_weights(run: TrainingRun, saved: dict[str, Any], best_path: Path) -> dict[str, torch.Tensor] | None:
    """The weights of the best epoch so far: ``last.pt``'s own when the last epoch was the best
    (``best.pt`` is written after ``last.pt`` and may have missed it), else ``best.pt``'s."""
    best_epoch = run.stopper.best_epoch
    if best_epoch == 0:
        return None
    if best_epoch == int(saved["epoch"]):
        return {key: value.clone() for key, value in saved["state_dict"].items()}
    best = load_checkpoint(best_path)
    if int(best["epoch"]) != best_epoch:
        raise UsageError(f"'{best_path}' holds epoch {best['epoch']}, but the run's best epoch is {best_epoch}; cannot resume safely.")
    return best["state_dict"]
