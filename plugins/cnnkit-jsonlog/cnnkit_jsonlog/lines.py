"""The JSON-lines file: an event as one line, and what a file already holds of a run.

A line is ``{"event": NAME, "time": ISO-8601 UTC, "run_dir": TEXT, ...the event's fields}``, the
fields in the event's own order, as JSON: paths as absolute text (cnnkit gives a run directory
under a relative ``--out`` as a relative path), tuples as lists, mappings as objects, and a float
that is not finite (NaN, infinity) as ``null``, so every line is strict JSON (RFC 8259 has no
NaN or Infinity, which Python's ``json`` would write).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from cnnkit.contracts import BestChanged, EpochEnded, RunEnded, RunStarted

Event = RunStarted | EpochEnded | BestChanged | RunEnded


def as_json(value: object) -> object:
    """``value`` as JSON holds it (see the module's docstring); anything else as its text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Path):
        return str(value.resolve())
    if isinstance(value, Mapping):
        return {str(key): as_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_json(item) for item in value]
    return str(value)


def now() -> str:
    """The time as ISO 8601 in UTC, to the millisecond: ``2026-12-02T09:14:03.527+00:00``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def event_line(name: str, event: Event, run_dir: Path, replayed: bool = False) -> bytes:
    """One line for ``event`` of the run in ``run_dir`` (absolute), ``"replayed": true`` added when
    it is written on resume for an epoch the file lacked."""
    line: dict[str, object] = {"event": name, "time": now(), "run_dir": str(run_dir)}
    line.update({item.name: as_json(getattr(event, item.name)) for item in dataclasses.fields(event)})
    if replayed:
        line["replayed"] = True
    return (json.dumps(line, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


@dataclass
class Logged:
    """The epochs a file holds an ``epoch_ended`` line and a ``best_changed`` line of."""

    epochs: set[int] = field(default_factory=set)
    bests: set[int] = field(default_factory=set)


def logged(path: Path, run_dir: str | None) -> Logged:
    """What ``path`` holds of a run: every line's when ``run_dir`` is None (the run directory's own
    file), else the lines whose ``run_dir`` is ``run_dir`` (a file runs share). A line that is not
    a JSON object with a whole ``epoch`` (a partial line, someone else's text) is skipped."""
    found = Logged()
    if not path.is_file():
        return found
    for raw in path.read_bytes().splitlines():
        try:
            line = json.loads(raw)
        except ValueError:  # also UnicodeDecodeError
            continue
        if not isinstance(line, dict) or (run_dir is not None and line.get("run_dir") != run_dir):
            continue
        epoch = line.get("epoch")
        if isinstance(epoch, int) and not isinstance(epoch, bool):
            if line.get("event") == "epoch_ended":
                found.epochs.add(epoch)
            elif line.get("event") == "best_changed":
                found.bests.add(epoch)
    return found


def mend_last_line(path: Path) -> None:
    """End ``path`` with a newline before lines are appended: what follows its last newline is cut
    off when it is the start of a line a killed run was writing (not JSON), and ended with a
    newline when it is a whole line written without one."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("r+b") as file:
        file.seek(-1, 2)
        if file.read(1) == b"\n":
            return
        file.seek(0)
        text = file.read()
        start = text.rfind(b"\n") + 1
        try:
            json.loads(text[start:])
        except ValueError:
            file.truncate(start)
        else:
            file.write(b"\n")
