"""``--log jsonlog``: the callback that appends each event of a run to a JSON-lines file.

Where: the run directory's ``events.jsonl``, or the file ``--log-uri`` names when it is a path or a
``file:`` URI ending in ``.jsonl`` (several runs may share it: each line names its run directory).
Any other ``--log-uri`` (``sqlite:///mlflow.db``, an MLflow folder) belongs to another tracker and
leaves the lines in the run directory, so ``--log mlflow,jsonlog`` works with one ``--log-uri``.

Each line is appended unbuffered, so a killed run keeps every line it wrote. On resume the file
continues: after the ``run_started`` line, each epoch of the run's history gets the
``epoch_ended`` line the file lacks, and the ``best_changed`` line it lacks when the epoch was a
new best, marked ``"replayed": true``: a run stopped after ``last.pt`` held an epoch and before
the callback heard of it is complete, and no epoch appears twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from io import FileIO
from pathlib import Path

from cnnkit.contracts import (
    BestChanged,
    Callback,
    CallbackOptions,
    EpochEnded,
    RunEnded,
    RunStarted,
    UsageError,
)
from cnnkit_jsonlog.lines import Event, Logged, event_line, logged, mend_last_line

FILE_NAME = "events.jsonl"
"""The file in the run directory that holds the lines when ``--log-uri`` names no ``.jsonl`` file."""


def chosen_file(log_uri: str) -> Path | None:
    """The file ``--log-uri`` names for the lines (absolute), or None for the run directory's own."""
    from urllib.parse import urlsplit

    uri = log_uri.strip()
    if not uri:
        return None
    parts = urlsplit(uri)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"--log-uri {uri!r}: jsonlog writes a local file, not one on host {parts.netloc!r}.")
        from urllib.request import url2pathname

        path = Path(url2pathname(parts.path))
    elif len(parts.scheme) > 1:  # another tracker's URI; a one-letter scheme is a Windows drive
        return None
    else:
        path = Path(uri).expanduser()
    if path.suffix != ".jsonl":
        return None
    if path.is_dir():
        raise UsageError(f"--log-uri {uri!r} is a folder; jsonlog needs a file ending in .jsonl.")
    return path.absolute()


def new_bests(history: Sequence[Mapping[str, float]]) -> set[int]:
    """The epochs that were a new best when they ended: a validation loss lower than every earlier
    epoch's, as cnnkit's early stopping decides (a NaN loss never is)."""
    best, found = math.inf, set()
    for row in history:
        if row["val_loss"] < best:
            best = row["val_loss"]
            found.add(int(row["epoch"]))
    return found


class JsonLog(Callback):
    """Appends one JSON line per event; see the module's docstring for where and how."""

    def __init__(self, options: CallbackOptions) -> None:
        self.file = chosen_file(options.log_uri)
        """The file ``--log-uri`` names, or None for the run directory's ``events.jsonl``."""
        self.run_dir = Path()
        self.stream: FileIO | None = None

    def run_started(self, event: RunStarted) -> None:
        self.run_dir = event.run_dir.resolve()
        path = self.file or self.run_dir / FILE_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        mend_last_line(path)
        done = logged(path, None if self.file is None else str(self.run_dir)) if event.history else Logged()
        self.stream = path.open("ab", buffering=0)
        self.write("run_started", event)
        bests = new_bests(event.history)
        for row in event.history:
            epoch = int(row["epoch"])
            if epoch not in done.epochs:
                self.write("epoch_ended", EpochEnded(epoch=epoch, metrics=row, lr=row["lr"], seconds=row["seconds"]), replayed=True)
            if epoch in bests and epoch not in done.bests:
                self.write("best_changed", BestChanged(epoch=epoch, metrics=row, path=self.run_dir / "best.pt"), replayed=True)

    def epoch_ended(self, event: EpochEnded) -> None:
        self.write("epoch_ended", event)

    def best_changed(self, event: BestChanged) -> None:
        self.write("best_changed", event)

    def run_ended(self, event: RunEnded) -> None:
        self.write("run_ended", event)
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    def write(self, name: str, event: Event, replayed: bool = False) -> None:
        """Append the event's line, unbuffered: it is in the file when this returns."""
        if self.stream is None:
            raise RuntimeError(f"jsonlog was told {name} before run_started or after run_ended")
        data = memoryview(event_line(name, event, self.run_dir, replayed))
        while data:
            written = self.stream.write(data)
            if not written:
                raise OSError(f"could not append to {self.stream.name}")
            data = data[written:]
