"""A run directory: ``best.pt``, ``last.pt``, ``metrics.csv``, ``curves.png``, ``config.json``."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

from cnnkit.engine.checkpoint import atomic_write

METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


class RunDir:
    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def create(cls, out: str | Path, name: str = "") -> RunDir:
        """Make ``out/name`` (a timestamp when ``name`` is empty); an existing one gets ``-2``, ``-3``..."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        base = name or time.strftime("%Y%m%d-%H%M%S")
        candidate, n = out / base, 1
        while True:
            try:
                candidate.mkdir()
                return cls(candidate)
            except FileExistsError:
                n += 1
                candidate = out / f"{base}-{n}"

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

    def remove_stale_temporaries(self) -> None:
        """Delete half-written files a killed process left behind (see ``atomic_write``)."""
        for leftover in self.path.glob(".*.tmp*"):
            leftover.unlink(missing_ok=True)

    def write_config(self, options: dict[str, Any]) -> None:
        text = json.dumps(options, indent=2, sort_keys=True) + "\n"
        atomic_write(self.config, lambda f: f.write(text.encode()))

    def write_metrics(self, history: list[dict[str, float]]) -> None:
        """Rewrite ``metrics.csv`` whole (atomically), one row per finished epoch."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)
        atomic_write(self.metrics, lambda f: f.write(buffer.getvalue().encode()))
