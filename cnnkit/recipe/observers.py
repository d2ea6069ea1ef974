"""The run's callbacks (``--log``): looked up when the run is planned, made once in the process
that writes the run directory, and told about the run as it goes.

A callback that raises is reported once, naming it and its plugin, and switched off; the run goes
on and its own files (``metrics.csv``, checkpoints) hold everything. An interruption (Ctrl-C) that
arrives while a callback runs is an interruption, not a callback failure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnkit.console import warn
from cnnkit.contracts._callbacks import (
    BestChanged,
    CallbackOptions,
    Ending,
    EpochEnded,
    RunCallback,
    RunEnded,
    RunStarted,
)
from cnnkit.engine.signals import Interrupted
from cnnkit.errors import CnnkitError, UsageError
from cnnkit.options import TrainConfig
from cnnkit.plugins import registry
from cnnkit.registry import Entry, UnknownNameError

if TYPE_CHECKING:
    from cnnkit.recipe.parts import FitState, RunParts


def callback_entries(log: str) -> tuple[Entry, ...]:
    """The callbacks ``--log`` names (comma-separated, each once; ``none`` for none, e.g. to stop
    logging on resume), looked up: an unknown name is refused with the closest ones."""
    if log.strip().lower() == "none":
        return ()
    names = list(dict.fromkeys(part.strip() for part in log.split(",") if part.strip()))
    if log.strip() and not names:
        raise UsageError(f"--log {log!r} names no callback; pass names such as tensorboard,mlflow (see 'cnnkit callbacks').")
    callbacks = registry("callbacks")
    try:
        return tuple(callbacks.get(name) for name in names)
    except UnknownNameError as exc:
        raise UsageError(f"--log: {exc}") from None


def make_callback(entry: Entry, options: CallbackOptions) -> RunCallback:
    """``entry``'s callback; a package it needs that is missing is named with the pip command."""
    try:
        made: RunCallback = entry.create(options)  # the registry checks it is a RunCallback
    except CnnkitError as exc:
        missing = exc.__cause__
        if isinstance(missing, ImportError):
            requires = entry.metadata.get("requires") or "the package that provides it"
            module = f" ({missing.name} is not installed)" if missing.name else ""
            install = f"pip install '{requires}'" if entry.metadata.get("requires") else f"install {requires}"
            raise UsageError(f"--log {entry.name} needs a package that is missing{module}; {install}.") from None
        raise
    return made


class Observers:
    """The callbacks of one run (empty in processes that do not observe)."""

    def __init__(self, callbacks: list[tuple[Entry, RunCallback]] | None = None):
        self._active = list(callbacks or [])

    @classmethod
    def make(cls, entries: tuple[Entry, ...], config: TrainConfig) -> Observers:
        options = CallbackOptions(log_uri=config.log_uri, resumed=bool(config.resume))
        return cls([(entry, make_callback(entry, options)) for entry in entries])

    def __bool__(self) -> bool:
        return bool(self._active)

    def _tell(self, method: str, event: object) -> None:
        for entry, callback in list(self._active):
            try:
                getattr(callback, method)(event)
            except Interrupted:
                raise
            except Exception as exc:
                self._active.remove((entry, callback))
                text = one_line(f"{type(exc).__name__}: {exc}")
                warn(f"{entry.describe()} failed in {method}: {text}; it is switched off and the run goes on "
                     "(metrics.csv and the checkpoints keep every epoch).")

    def run_started(self, parts: RunParts, state: FitState, options: dict[str, Any]) -> None:
        """The run is built and its directory open (``options``: its record, as config.json holds it)."""
        if self:
            self._tell("run_started", started_event(parts, state, options))

    def epoch_ended(self, row: dict[str, float], best: Path | None) -> None:
        """After an epoch is saved; ``best``: the ``best.pt`` it was just saved to, if it is the new best."""
        if not self:
            return
        epoch = int(row["epoch"])
        self._tell("epoch_ended", EpochEnded(epoch=epoch, metrics=dict(row), lr=row["lr"], seconds=row["seconds"]))
        if best is not None:
            self._tell("best_changed", BestChanged(epoch=epoch, metrics=dict(row), path=best.absolute()))

    def run_ended(self, event: RunEnded) -> None:
        self._tell("run_ended", event)

    @contextlib.contextmanager
    def watching(self, parts: RunParts, state: FitState) -> Iterator[None]:
        """Around the epochs: an interruption or a failure is told to the callbacks (with what the
        run directory holds by then) before it goes on its way. A finished run is told by
        :meth:`finished`."""
        try:
            yield
        except Interrupted:
            if self:
                self.run_ended(ended_event(parts, state, "interrupted"))
            raise
        except Exception as exc:
            if self:
                error = str(exc) if isinstance(exc, CnnkitError) else f"{type(exc).__name__}: {exc}"
                self.run_ended(ended_event(parts, state, "failed", error=error))
            raise

    def finished(self, parts: RunParts, state: FitState, test: dict[str, float] | None,
                 confusion: tuple[tuple[int, ...], ...] | None) -> None:
        """The run finished (or stopped early): ``test`` and ``confusion`` score its best weights."""
        if self:
            status: Ending = "stopped early" if state.stopper.should_stop else "finished"
            self.run_ended(ended_event(parts, state, status, test, confusion))


MESSAGE_CHARACTERS = 200
"""How much of a failing callback's exception the warning quotes (a library's message may hold a
whole SQL statement)."""


def one_line(text: str) -> str:
    """``text``'s first line, cut to :data:`MESSAGE_CHARACTERS`."""
    first = text.strip().splitlines()[0].strip() if text.strip() else text
    return first if len(first) <= MESSAGE_CHARACTERS else first[:MESSAGE_CHARACTERS - 3].rstrip() + "..."


def started_event(parts: RunParts, state: FitState, options: dict[str, Any]) -> RunStarted:
    model = parts.strategy.unwrap(parts.model)
    data = parts.data
    sizes = {"train": len(data.train), "val": len(data.val)}
    if data.test is not None:
        sizes["test"] = len(data.test)
    return RunStarted(
        run_dir=state.directory.path.absolute(), run_name=state.directory.name, options=dict(options),
        model=parts.model_name, parameters=sum(p.numel() for p in model.parameters()),
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        classes=tuple(data.classes), data_sizes=sizes, epochs=parts.config.epochs,
        history=tuple(dict(row) for row in state.history),
    )


def ended_event(parts: RunParts, state: FitState, status: Ending, test: dict[str, float] | None = None,
                confusion: tuple[tuple[int, ...], ...] | None = None, error: str = "") -> RunEnded:
    directory = state.directory
    files = {path.name: path.absolute() for path in (directory.config, directory.metrics, directory.last, directory.best, directory.curves)
             if path.is_file()}
    best_epoch = state.stopper.best_epoch if state.best_state is not None else 0
    best: dict[str, Any] = {}
    if best_epoch and best_epoch <= len(state.history):
        row = state.history[best_epoch - 1]
        best = {"val_loss": row["val_loss"], "val_acc": row["val_acc"]}
    return RunEnded(
        status=status, epochs_done=len(state.history), best_epoch=best_epoch, best=best,
        test=test, confusion=confusion, classes=tuple(parts.data.classes), history=tuple(dict(row) for row in state.history),
        files=files, error=error,
    )
