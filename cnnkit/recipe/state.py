"""The run state, saved whole at every epoch boundary (``last.pt``) and restored whole by ``--resume``.

``last.pt`` holds the model, optimizer, scheduler, gradient scaler, early-stopping progress, the
metrics history, and every random generator: the shuffle order's (shared by all processes) and,
for each process, its augmentation, torch (CPU and CUDA), NumPy and Python generators. Epochs
are the unit: a run stopped part-way through an epoch redoes that epoch from its start.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from cnnkit import __version__
from cnnkit.console import note
from cnnkit.engine.checkpoint import load_checkpoint, save_checkpoint, state_mismatch
from cnnkit.engine.seeding import rng_state, set_rng_state
from cnnkit.errors import CnnkitError, UsageError
from cnnkit.recipe.parts import FitState, RunParts
from cnnkit.recipe.rundir import RunDir

Weights = dict[str, torch.Tensor]


def describe(parts: RunParts, options: dict[str, Any], state: Weights, epoch: int, metrics: dict, **extra: Any) -> dict[str, Any]:
    """A self-describing checkpoint: enough to rebuild, normalise and label without the config
    (``options``: the run's record, as config.json holds it)."""
    return {
        "cnnkit_version": __version__,
        "model": {"name": parts.model_name, "kwargs": parts.model_kwargs},
        "classes": list(parts.data.classes),
        "input_size": list(parts.input_size),
        "normalization": {"mean": list(parts.mean), "std": list(parts.std)},
        "preprocessing": parts.preprocessing,
        "data": parts.data.source,
        "config": options,
        "epoch": epoch,
        "metrics": metrics,
        "state_dict": state,
        **({"transfer": parts.transfer.record()} if parts.transfer is not None else {}),
        **extra,
    }


def capture(parts: RunParts, state: FitState) -> dict[str, Any]:
    """This epoch boundary's state; every process contributes its own generators."""
    trainer, strategy = parts.trainer, parts.strategy
    mine = {**rng_state(strategy.device), "augment": trainer.augment_generator.get_state(),
            "sample_augment": trainer.sample_generator.get_state()}
    class_weight = trainer.class_weight()
    return {
        "world_size": strategy.world_size,
        "class_weights": class_weight.tolist() if class_weight is not None else None,
        "early_stopping": state.stopper.state_dict(),
        "history": [dict(row) for row in state.history],
        "rng": {"shuffle": trainer.shuffle_generator.get_state(), "processes": strategy.all_gather_object(mine)},
        **trainer.state_dict(),
    }


def save(parts: RunParts, state: FitState, options: dict[str, Any], payload: dict[str, Any]) -> None:
    """``last.pt``: the current weights, described, with ``payload`` (:func:`capture`'s)."""
    epoch = len(state.history)
    metrics = state.history[-1] if state.history else {}
    weights = parts.strategy.unwrap(parts.model).state_dict()
    save_checkpoint(state.directory.last, describe(parts, options, weights, epoch, metrics, **payload))


def save_best(parts: RunParts, options: dict[str, Any], path: Path, weights: Weights, epoch: int, metrics: dict) -> None:
    save_checkpoint(path, describe(parts, options, weights, epoch, metrics))


def load_weights(model: torch.nn.Module, saved: dict[str, Any], path: Path) -> None:
    """The weights of a resumed run's ``last.pt`` (read from ``path``) into ``model``, or one line
    naming how they do not fit."""
    mismatch = state_mismatch(model.state_dict(), saved["state_dict"])
    if mismatch:
        raise _not_this_run(path, mismatch)
    model.load_state_dict(saved["state_dict"])


def _not_this_run(path: Path, details: str) -> CnnkitError:
    return CnnkitError(f"'{path}' does not fit this run's model ({details}); put back the run's own last.pt, or start a new run.")


def read_last(run_dir: RunDir, backbone: str, model: str) -> dict[str, Any]:
    """A resumed run's ``last.pt`` (on the CPU: generator states must be CPU tensors), refused
    when it holds another model than the run's config.json names (``backbone``, else ``model``)."""
    saved = load_checkpoint(run_dir.last)
    recorded = saved.get("config")
    theirs: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
    their_model, own_model = theirs.get("backbone") or theirs.get("model"), backbone or model
    if their_model and their_model != own_model:
        raise _not_this_run(run_dir.last, f"it holds a {their_model} model, the run's config.json names {own_model}")
    return saved


def restore(parts: RunParts, state: FitState, saved: dict[str, Any], path: Path) -> None:
    """Put the run back exactly where ``last.pt`` (``saved``, read from ``path``) left it;
    refuse what cannot continue."""
    strategy, trainer, epochs = parts.strategy, parts.trainer, parts.config.epochs
    done = _check_continuable(parts, saved, path)
    state.stopper.load_state_dict(saved["early_stopping"])
    if done >= epochs or state.stopper.should_stop:
        why = f"finished {done} of {epochs} epochs" if done >= epochs else f"stopped early after epoch {done}"
        note(
            f"'{path.parent}' already {why}; scoring its best weights again. To train further, "
            f"pass --epochs N with N > {done}{' and a larger --patience (or 0)' if state.stopper.should_stop else ''}."
        )
    load_weights(strategy.unwrap(parts.model), saved, path)
    trainer.optimizer.load_state_dict(saved["optimizer"])
    restore_scheduler(parts, saved)
    trainer.scaler.load_state_dict(saved["scaler"])
    state.history = [dict(row) for row in saved["history"]]
    state.saved_epoch = done
    rng = saved["rng"]
    trainer.shuffle_generator.set_state(rng["shuffle"])
    mine = rng["processes"][strategy.rank]
    trainer.augment_generator.set_state(mine["augment"])
    if "sample_augment" in mine:
        trainer.sample_generator.set_state(mine["sample_augment"])
    set_rng_state(mine, strategy.device)
    state.best_state = best_weights(state.stopper.best_epoch, saved, path.parent / "best.pt")


def _check_continuable(parts: RunParts, saved: dict[str, Any], path: Path) -> int:
    """The epochs ``last.pt`` has finished, after refusing a device type, process count or
    ``--epochs`` this run cannot continue with."""
    strategy = parts.strategy
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
    if parts.config.epochs < done:
        raise UsageError(f"'{path.parent}' has finished {done} epochs; --epochs must be at least {done}.")
    return done


def restore_scheduler(parts: RunParts, saved: dict[str, Any]) -> None:
    """The saved schedule. When ``--epochs`` changed, a per-batch schedule (whose length depends on
    the epochs) keeps its step count but takes the new length, and the learning rate jumps to the
    new schedule's value at that step: a finished cosine run extended by a third goes on from
    where a longer run would be, not from the zero it had reached."""
    trainer, config = parts.trainer, parts.config
    scheduler, state = trainer.scheduler, saved["scheduler"]
    if scheduler is None or state is None:
        return
    if int(saved["config"]["epochs"]) == config.epochs or not trainer.scheduler_per_batch:
        scheduler.load_state_dict(state)
        return
    length_keys = ("T_max", "total_steps", "_schedule_phases")
    scheduler.load_state_dict({key: value for key, value in state.items() if key not in length_keys})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # get_lr() outside step() warns
        closed_form = getattr(scheduler, "_get_closed_form_lr", None)
        lrs = closed_form() if closed_form is not None else scheduler.get_lr()
    for group, lr in zip(trainer.optimizer.param_groups, lrs):
        group["lr"] = lr
    scheduler._last_lr = list(lrs)
    note(
        f"--epochs changed from {saved['config']['epochs']} to {config.epochs}; the "
        f"{config.scheduler} schedule now spans the new length and goes on from step "
        f"{scheduler.last_epoch} at lr {lrs[0]:.2e}."
    )


def best_weights(best_epoch: int, saved: dict[str, Any], best_path: Path) -> Weights | None:
    """The weights of the best epoch so far (``best_epoch``, 0 when none): ``last.pt``'s own when
    the last epoch was the best (``best.pt`` is written after ``last.pt`` and may have missed it),
    else ``best.pt``'s."""
    if best_epoch == 0:
        return None
    if best_epoch == int(saved["epoch"]):
        return {key: value.clone() for key, value in saved["state_dict"].items()}
    best = load_checkpoint(best_path)
    if int(best["epoch"]) != best_epoch:
        raise UsageError(f"'{best_path}' holds epoch {best['epoch']}, but the run's best epoch is {best_epoch}; cannot resume safely.")
    return best["state_dict"]
