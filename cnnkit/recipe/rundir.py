"""A run directory: ``best.pt``, ``last.pt``, ``metrics.csv``, ``curves.png``, ``config.json``, and
``status.json`` when the run ended in an error."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from cnnkit.engine.checkpoint import atomic_write, make_folder
from cnnkit.errors import CnnkitError, UsageError

METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


def _is_cnnkit_process(pid: str | int) -> bool:
    """Whether ``pid`` is alive and (where /proc tells) a cnnkit process, not a reused pid."""
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return b"cnnkit" in cmdline.read_bytes() if cmdline.parent.exists() else True
    except OSError:
        return False


class RunDir:
    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def create(cls, out: str | Path, name: str = "") -> RunDir:
        """Make ``out/name`` (a timestamp when ``name`` is empty); an existing one gets ``-2``, ``-3``..."""
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out '{out}' is a file; pass a folder to hold run directories.")
        make_folder(out)
        base = name or time.strftime("%Y%m%d-%H%M%S")
        candidate, n = out / base, 1
        while True:
            try:
                candidate.mkdir()
                return cls(candidate)
            except FileExistsError:
                n += 1
                candidate = out / f"{base}-{n}"
            except OSError as exc:
                raise CnnkitError(f"Cannot create the run directory '{candidate}': {exc.strerror or exc}.") from None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def best(self) -> Path:
        return self.path / "best.pt"

    @property
    def last(self) -> Path:
        return self.path / "last.pt"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def curves(self) -> Path:
        return self.path / "curves.png"

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"

    @property
    def status(self) -> Path:
        return self.path / "status.json"

    def held(self) -> bool:
        """Whether a run holds the directory now, as :meth:`lock` judges its ``.lock``: a live cnnkit
        process on this host, or any holder on another host (which cannot be checked from here)."""
        try:
            holder = self.lock_file.read_text().split() if self.lock_file.is_file() else []
        except (OSError, UnicodeDecodeError):
            return False
        return len(holder) == 2 and (holder[1] != socket.gethostname() or _is_cnnkit_process(holder[0]))

    def lock(self) -> None:
        """Claim the directory for this process (created exclusively, so two claims cannot both win).
        A live cnnkit process holding it on this host, or any holder on another host, is refused;
        a lock left by a dead process here is taken over."""
        me = [str(os.getpid()), socket.gethostname()]
        while True:
            try:
                fd = os.open(self.lock_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                holder = self.lock_file.read_text().split() if self.lock_file.is_file() else []
                if holder == me:
                    return
                if len(holder) == 2 and holder[1] != me[1]:
                    raise UsageError(
                        f"'{self.path}' is locked by process {holder[0]} on {holder[1]}; if no run goes on there, "
                        f"delete '{self.lock_file}'."
                    ) from None
                if len(holder) == 2 and _is_cnnkit_process(holder[0]):
                    raise UsageError(f"'{self.path}' is being trained by process {holder[0]}; "
                                     "wait for it to end or stop it first.") from None
                self.lock_file.unlink(missing_ok=True)  # left by a process that died
                continue
            except OSError as exc:
                raise CnnkitError(f"Cannot write '{self.lock_file}': {exc.strerror or exc}.") from None
            with os.fdopen(fd, "w") as f:
                f.write(" ".join(me) + "\n")
            return

    def unlock(self) -> None:
        holder = self.lock_file.read_text().split() if self.lock_file.is_file() else []
        if holder[:1] == [str(os.getpid())]:
            self.lock_file.unlink(missing_ok=True)

    def remove_stale_temporaries(self) -> None:
        """Delete half-written files a killed process left behind (see ``atomic_write``)."""
        for leftover in self.path.glob(".*.tmp*"):
            leftover.unlink(missing_ok=True)

    def write_config(self, options: dict[str, Any]) -> None:
        text = json.dumps(options, indent=2, sort_keys=True) + "\n"
        atomic_write(self.config, text.encode())

    def write_status(self, record: dict[str, Any]) -> None:
        """``status.json``, atomically: how the run ended, where its other files cannot tell."""
        atomic_write(self.status, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())

    def write_metrics(self, history: list[dict[str, float]]) -> None:
        """Rewrite ``metrics.csv`` whole (atomically), one row per finished epoch."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)
        atomic_write(self.metrics, buffer.getvalue().encode())
