"""The callback contract: observers of a training run, such as experiment trackers.

``factory(options: CallbackOptions) -> RunCallback``, called once per run in the process that
writes the run directory (rank 0) when ``--log`` names the entry. Only that process observes. The callback is told, in this
order: :class:`RunStarted` once, :class:`EpochEnded` after each epoch (once ``last.pt`` holds it)
with :class:`BestChanged` after it when that epoch is the new best, and :class:`RunEnded` once,
however the run ends. The events are frozen: a callback observes, it cannot steer the run. Paths
in events are absolute.

A callback that raises is reported once and switched off; the run goes on. Subclass
:class:`Callback` to implement only the events you need.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

Row = Mapping[str, float]
"""One epoch's metrics as ``metrics.csv`` holds them: ``epoch``, ``train_loss``, ``train_acc``,
``val_loss``, ``val_acc``, ``lr``, ``seconds``."""

Ending = Literal["finished", "stopped early", "interrupted", "failed"]


@dataclass(frozen=True)
class CallbackOptions:
    """What a callback factory is given. The factory runs before the run is built (and in the
    process that launches distributed workers, as a check): it should import what it needs, so a
    missing package is reported before any work, and open files or connections in ``run_started``."""

    log_uri: str = ""
    """``--log-uri``: where a tracker logs (its own default when empty)."""
    resumed: bool = False
    """The run continues an interrupted one (``--resume``): a tracker should continue the same logged run."""


@dataclass(frozen=True)
class RunStarted:
    """The run is built and its directory open; no epoch of this attempt has run yet."""

    run_dir: Path
    run_name: str
    options: Mapping[str, Any]
    """The options as ``config.json`` records them (``auto`` choices resolved)."""
    model: str
    parameters: int
    trainable_parameters: int
    classes: tuple[str, ...]
    data_sizes: Mapping[str, int]
    """Images per split: ``train``, ``val`` and, when there is one, ``test``."""
    epochs: int
    """Epochs planned (``--epochs``)."""
    history: tuple[Row, ...] = ()
    """Epochs done before this attempt (a resumed run): a tracker logs those it has not logged."""


@dataclass(frozen=True)
class EpochEnded:
    """An epoch is done and saved in ``last.pt`` and ``metrics.csv``."""

    epoch: int
    metrics: Row
    lr: float
    seconds: float


@dataclass(frozen=True)
class BestChanged:
    """The epoch just ended has the lowest validation loss so far; ``best.pt`` holds its weights."""

    epoch: int
    metrics: Row
    path: Path


@dataclass(frozen=True)
class RunEnded:
    """The run is over: ``status`` says how. ``test`` and ``confusion`` (rows: true class,
    columns: predicted) come from scoring the best weights on the test split, when there is one
    and the run finished or stopped early."""

    status: Ending
    epochs_done: int
    best_epoch: int = 0
    best: Row = field(default_factory=dict)
    test: Row | None = None
    confusion: tuple[tuple[int, ...], ...] | None = None
    classes: tuple[str, ...] = ()
    history: tuple[Row, ...] = ()
    files: Mapping[str, Path] = field(default_factory=dict)
    """The run directory's files by name (``config.json``, ``metrics.csv``, ``last.pt``, ``best.pt``,
    ``curves.png``), those that exist."""
    error: str = ""
    """Why a failed run failed."""


@runtime_checkable
class RunCallback(Protocol):
    """Told about one run. Methods are called in the run's process; keep them quick (an epoch
    waits for them) and never raise on purpose: a failure switches the callback off."""

    def run_started(self, event: RunStarted) -> None: ...
    def epoch_ended(self, event: EpochEnded) -> None: ...
    def best_changed(self, event: BestChanged) -> None: ...
    def run_ended(self, event: RunEnded) -> None: ...


class Callback:
    """A :class:`RunCallback` that ignores every event: subclass it and override what you need."""

    def run_started(self, event: RunStarted) -> None:
        """The run starts (or resumes)."""

    def epoch_ended(self, event: EpochEnded) -> None:
        """An epoch ended."""

    def best_changed(self, event: BestChanged) -> None:
        """The best weights changed."""

    def run_ended(self, event: RunEnded) -> None:
        """The run ended; release what the callback holds."""


class CallbackFactory(Protocol):
    """Called once per run (rank 0 only) when ``--log`` names the entry."""

    def __call__(self, options: CallbackOptions, /) -> RunCallback: ...


class CallbackRegister(Protocol):
    """The ``register`` that ``register_callbacks`` receives.

    ``requires``: the pip requirement the callback needs, e.g. ``"cnnkit[mlflow]"``; named when its
    factory raises ``ImportError``.
    """

    def __call__(self, name: str, factory: CallbackFactory | str, *, help: str = "", requires: str = "") -> None: ...
