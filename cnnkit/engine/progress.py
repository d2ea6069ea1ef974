"""What the user sees while training: one line per epoch, and on a terminal a tqdm bar while the
epoch runs (replaced by that line, so the result is readable in full however narrow the terminal).

Bars refresh their loss/accuracy at most every ``refresh_steps`` batches, because reading the
device-side metrics forces a host synchronisation.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click


def format_epoch(row: dict[str, float], epochs: int) -> str:
    return (
        f"epoch {int(row['epoch']):>{len(str(epochs))}}/{epochs}  "
        f"train loss {row['train_loss']:.4f} acc {100 * row['train_acc']:.2f}%  "
        f"val loss {row['val_loss']:.4f} acc {100 * row['val_acc']:.2f}%  "
        f"lr {row['lr']:.2e}  {row['seconds']:.1f}s"
    )


class Progress:
    def __init__(self, epochs: int, *, quiet: bool = False, bars: bool | None = None, refresh_steps: int = 10):
        self.epochs = epochs
        self.quiet = quiet
        self.bars = (not quiet) and (sys.stdout.isatty() if bars is None else bars)
        self.refresh_steps = refresh_steps
        self._bar = None

    def start_epoch(self, epoch: int, steps: int) -> None:
        if self.bars:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=steps, desc=f"epoch {epoch}/{self.epochs}", leave=False, dynamic_ncols=True)

    def step(self, step: int, read_metrics: Callable[[], dict[str, float]]) -> None:
        if self._bar is None:
            return
        self._bar.update(1)
        if step % self.refresh_steps == 0:
            metrics = read_metrics()
            self._bar.set_postfix(loss=f"{metrics['loss']:.4f}", acc=f"{100 * metrics['acc']:.2f}%", refresh=False)

    def end_epoch(self, row: dict[str, float]) -> None:
        self.close()
        if not self.quiet:
            click.echo(format_epoch(row, self.epochs))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def message(self, text: str) -> None:
        if not self.quiet:
            click.echo(text)
