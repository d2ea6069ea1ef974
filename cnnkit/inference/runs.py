"""What the run directories under a folder hold, one summary each (``cnnkit runs``).

A run is told from its files, the cheap ones first: ``config.json`` (model, data, planned epochs,
patience), ``metrics.csv`` (epochs done, the best epoch, seconds), ``.lock`` (running) and
``status.json`` (an error that ended it). ``best.pt`` is read only for a run that ran all its
epochs or stopped early: it holds the test score once the run was scored, which is how a finished
run differs from one stopped while scoring. Any other unfinished run with a ``last.pt`` is
interrupted and can be resumed (a run that failed before cnnkit recorded failures reads so too).
"""

from __future__ import annotations

import csv
import fnmatch
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cnnkit.engine.early_stopping import EarlyStopping
from cnnkit.errors import CnnkitError, UsageError
from cnnkit.recipe.rundir import METRIC_COLUMNS, RunDir
from cnnkit.registry import suggest

RUN_FILES = ("config.json", "metrics.csv", "last.pt", "best.pt")


@dataclass
class RunSummary:
    """One entry of the folder: a run's name, what it trained, how far it got and how it ended.
    Accuracies are fractions, as ``metrics.csv`` holds them; None where the files do not tell."""

    name: str
    path: str
    status: str
    """running, finished, stopped early, interrupted, failed, damaged or not a run."""
    model: str = ""
    data: str = ""
    epochs_done: int | None = None
    epochs_planned: int | None = None
    best_epoch: int | None = None
    """The epoch of the lowest validation loss, whose weights ``best.pt`` holds and the test scores."""
    best_val_acc: float | None = None
    test_acc: float | None = None
    seconds: float | None = None
    """The epochs' time, summed from ``metrics.csv`` (start-up and test scoring not included)."""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Unreadable(Exception):
    """A folder that cannot be read as a run: its status and why."""

    def __init__(self, status: str, why: str):
        super().__init__(why)
        self.status = status


def read_config(run_dir: RunDir) -> dict[str, Any]:
    if not run_dir.config.is_file():
        present = [name for name in RUN_FILES if (run_dir.path / name).exists()]
        if not present:
            raise Unreadable("not a run", "no config.json, metrics.csv or checkpoints")
        raise Unreadable("damaged", f"no config.json (it has {', '.join(present)})")
    try:
        config = json.loads(run_dir.config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise Unreadable("damaged", f"config.json cannot be read: {exc}") from None
    if not isinstance(config, dict):
        raise Unreadable("damaged", "config.json does not hold a run's options")
    if "epochs" not in config and "model" not in config:
        raise Unreadable("not a run", "its config.json is not a cnnkit run's (no model, no epochs)")
    return config


def read_history(run_dir: RunDir) -> list[dict[str, float]]:
    """``metrics.csv``'s rows (none before the first epoch ends), one per finished epoch."""
    if not run_dir.metrics.is_file():
        return []
    try:
        with open(run_dir.metrics, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        history = [{key: float(row[key]) for key in METRIC_COLUMNS} for row in rows]
    except (OSError, UnicodeDecodeError, csv.Error, KeyError, TypeError, ValueError):
        raise Unreadable("damaged", "metrics.csv cannot be read as cnnkit's metrics") from None
    if [int(row["epoch"]) for row in history] != list(range(1, len(history) + 1)):
        raise Unreadable("damaged", "metrics.csv does not number its epochs 1, 2, 3...")
    return history


def whole_number(config: dict[str, Any], key: str) -> int | None:
    value = config.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def replay_stopping(history: list[dict[str, float]], patience: int) -> EarlyStopping:
    """Early stopping fed the recorded epochs, as the run fed it: its best epoch, and whether it stopped."""
    stopper = EarlyStopping(patience)
    for row in history:
        stopper.step(int(row["epoch"]), row["val_loss"])
    return stopper


def read_failure(run_dir: RunDir) -> str | None:
    """The error a run recorded as it failed (``status.json``), or None."""
    try:
        record = json.loads(run_dir.status.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if isinstance(record, dict) and record.get("status") == "failed":
        return str(record.get("error") or "no reason recorded")
    return None


def read_test_score(run_dir: RunDir) -> tuple[bool, float | None]:
    """Whether ``best.pt`` was scored on the test split (written so at the run's end), and the
    accuracy (None without a test split)."""
    from cnnkit.engine.checkpoint import load_checkpoint

    if not run_dir.best.is_file():
        raise Unreadable("damaged", "no best.pt")
    try:
        metrics = load_checkpoint(run_dir.best).get("metrics")
    except CnnkitError as exc:
        raise Unreadable("damaged", str(exc)) from None
    if not isinstance(metrics, dict) or "test" not in metrics:
        return False, None
    test = metrics["test"]
    acc = test.get("acc") if isinstance(test, dict) else None
    return True, float(acc) if isinstance(acc, (int, float)) else None


def judge(run_dir: RunDir, summary: RunSummary, stopper: EarlyStopping) -> None:
    """The run's status (and the test score of a scored one), from the cheapest files that tell it."""
    if run_dir.held():
        summary.status = "running"
        return
    failure = read_failure(run_dir)
    if failure is not None:
        summary.status, summary.note = "failed", failure
        return
    done, planned = summary.epochs_done or 0, summary.epochs_planned
    if (planned is not None and done >= planned) or stopper.should_stop:
        scored, summary.test_acc = read_test_score(run_dir)
        if scored:
            summary.status = "finished" if planned is not None and done >= planned else "stopped early"
            return
    if not run_dir.last.is_file():
        raise Unreadable("damaged", "no last.pt to resume from")
    summary.status = "interrupted"
    summary.note = f"resume with: cnnkit train --resume {run_dir.path}"


def summarize(path: Path) -> RunSummary:
    """One entry of the folder, whatever it holds: a damaged or foreign one says so, never raises."""
    summary = RunSummary(name=path.name, path=str(path), status="not a run")
    if not path.is_dir():
        summary.note = "a file, not a run directory"
        return summary
    run_dir = RunDir(path)
    try:
        config = read_config(run_dir)
        summary.model = str(config.get("backbone") or config.get("model") or "")
        summary.data = str(config.get("data") or "")
        summary.epochs_planned = whole_number(config, "epochs")
        history = read_history(run_dir)
        stopper = replay_stopping(history, whole_number(config, "patience") or 0)
        summary.epochs_done = len(history)
        summary.seconds = sum(row["seconds"] for row in history) if history else None
        if stopper.best_epoch:
            summary.best_epoch = stopper.best_epoch
            summary.best_val_acc = history[stopper.best_epoch - 1]["val_acc"]
        judge(run_dir, summary, stopper)
    except Unreadable as exc:
        summary.status, summary.note = exc.status, str(exc)
    except OSError as exc:
        summary.status, summary.note = "damaged", f"cannot be read: {exc.strerror or exc}"
    return summary


def list_runs(folder: Path) -> list[RunSummary]:
    """A summary of every entry of ``folder`` (hidden ones left out), by name; a run directory
    given itself is its own one entry."""
    if not folder.exists():
        raise UsageError(f"'{folder}' does not exist; pass the folder that holds run directories (train's --out).")
    if not folder.is_dir():
        raise UsageError(f"'{folder}' is a file; pass the folder that holds run directories (train's --out).")
    if RunDir(folder).config.is_file():
        return [summarize(folder)]
    try:
        entries = sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))
    except OSError as exc:
        raise CnnkitError(f"Cannot read the folder '{folder}': {exc.strerror or exc}.") from None
    return [summarize(entry) for entry in entries]


def matching(summaries: Sequence[RunSummary], patterns: Sequence[str]) -> list[RunSummary]:
    """The summaries whose name matches any of the wildcards (``'resnet*'``, case-sensitive); all without any."""
    if not patterns:
        return list(summaries)
    return [s for s in summaries if any(fnmatch.fnmatchcase(s.name, pattern) for pattern in patterns)]


def _text(field: str) -> Callable[[RunSummary], tuple[bool, Any]]:
    return lambda s: (not getattr(s, field), getattr(s, field))


def _number(field: str) -> Callable[[RunSummary], tuple[bool, Any]]:
    """Largest first, unknown last."""
    def key(s: RunSummary) -> tuple[bool, float]:
        value = getattr(s, field)
        return (value is None or math.isnan(value), -value if value is not None else 0.0)

    return key


SORT_KEYS: dict[str, Callable[[RunSummary], tuple[bool, Any]]] = {
    "name": _text("name"), "model": _text("model"), "data": _text("data"), "epochs": _number("epochs_done"),
    "val": _number("best_val_acc"), "test": _number("test_acc"), "time": _number("seconds"), "status": _text("status"),
}


def sorted_runs(summaries: Sequence[RunSummary], column: str) -> list[RunSummary]:
    """By ``column``: text from A to Z, numbers from the largest, unknown values last; ties by name."""
    if column not in SORT_KEYS:
        close = suggest(column, list(SORT_KEYS))
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UsageError(f"--sort '{column}' is not a column.{hint} Choose one of: {', '.join(SORT_KEYS)}.")
    return sorted(sorted(summaries, key=lambda s: s.name), key=SORT_KEYS[column])
