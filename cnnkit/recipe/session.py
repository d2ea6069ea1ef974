"""A training session for plugins: strategy, data, model, optimizer and trainer built exactly as
``cnnkit train`` builds them, in this process, and one optimizer step at a time.

:func:`prepare_training` is the public entry (exported by ``cnnkit.contracts``); a command plugin
such as ``cnnkit lr-find`` uses it instead of cnnkit's internals.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from cnnkit.errors import UsageError
from cnnkit.options import FIELD_NAMES, TrainConfig
from cnnkit.registry import suggest

if TYPE_CHECKING:
    import torch
    from torch import nn

    from cnnkit.recipe.parts import RunParts

FIXED = {"epochs": 1, "scheduler": "none", "strategy": "single", "quiet": True, "log": ""}
"""Options a session sets itself: one process, no schedule (the caller sets the rate), no output,
no callbacks (a session has no run to tell them about)."""


class TrainingSession:
    """A model, its optimizer and its training data as ``cnnkit train`` builds them; :meth:`step`
    takes one training step as the trainer does. :meth:`close` when done (also after a failure)."""

    def __init__(self, parts: RunParts):
        self._parts = parts
        self._trainer = parts.trainer
        self.model: nn.Module = parts.strategy.unwrap(parts.model)
        self.optimizer: torch.optim.Optimizer = parts.trainer.optimizer
        self.classes: list[str] = list(parts.data.classes)
        self.model_name: str = parts.model_name
        self.data_name: str = parts.config.data
        self._stream = self._batches()
        self._trainer.model.train()
        self._closed = False

    def _batches(self) -> Iterator[tuple[Any, Any]]:
        """Training batches epoch after epoch, reshuffled, as the trainer draws them."""
        while True:
            for images, labels, _ in self._trainer.batches(self._parts.data.train):
                yield images, labels

    def step(self) -> float:
        """One optimizer step on the next training batch, as the trainer takes it (augmentation,
        normalisation, precision, loss scaling), at the rate set in the optimizer's groups; the loss."""
        trainer = self._trainer
        images, labels = next(self._stream)
        x, targets = trainer.train_inputs(images, labels)
        with trainer.precision.autocast():
            loss = trainer.loss_fn(trainer.model(x), targets)
        trainer.optimizer.zero_grad(set_to_none=True)
        trainer.scaler.scale(loss).backward()
        trainer.scaler.step(trainer.optimizer)
        trainer.scaler.update()
        return float(loss.item())

    def close(self) -> None:
        """Tear the strategy down (once; later calls do nothing)."""
        if not self._closed:
            self._closed = True
            self._parts.strategy.teardown()

    def __enter__(self) -> TrainingSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prepare_training(**options: Any) -> TrainingSession:
    """A :class:`TrainingSession` for ``options`` (``cnnkit train``'s options by their Python
    names, e.g. ``model="resnet20", batch_size=32, lr=1e-3``; the others as ``train``'s
    defaults), checked as ``train`` checks them. It runs in one process (strategy ``single``),
    without a schedule, a run directory or progress output."""
    _check_options(options)
    from cnnkit.recipe.build import build_parts
    from cnnkit.recipe.plan import make_plan
    from cnnkit.recipe.run import create_strategy

    config = TrainConfig(**{**options, **FIXED})
    plan = make_plan(config)
    strategy = create_strategy(plan.strategy, config)
    strategy.setup()
    try:
        return TrainingSession(build_parts(config, plan, strategy, bars=False, saved=_resumed(config)))
    except BaseException:
        strategy.teardown()
        raise


def _check_options(options: dict[str, Any]) -> None:
    """Refuse names ``cnnkit train`` does not have, and options the session sets itself."""
    unknown = [name for name in options if name not in FIELD_NAMES]
    if unknown:
        hints = []
        for name in unknown:
            close = suggest(name, FIELD_NAMES)
            hints.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise UsageError(f"prepare_training: unknown option{'s' if len(unknown) > 1 else ''} {', '.join(hints)}.")
    fixed = sorted(name for name in options if name in FIXED and options[name] != FIXED[name])
    if fixed:
        raise UsageError(f"prepare_training sets {', '.join(fixed)} itself "
                         f"({', '.join(f'{n}={FIXED[n]!r}' for n in fixed)}); leave {'them' if len(fixed) > 1 else 'it'} out.")


def _resumed(config: TrainConfig) -> dict[str, Any] | None:
    """The ``last.pt`` of a run named by ``resume``, when fine-tuning: the backbone is built as that
    run's (``cnnkit train`` does the same); a session restores nothing else."""
    if not (config.resume and config.backbone):
        return None
    from pathlib import Path

    from cnnkit.recipe.rundir import RunDir
    from cnnkit.recipe.state import read_last

    return read_last(RunDir(Path(config.resume)), config.backbone, config.model)
