"""Ctrl-C (SIGINT) and SIGTERM end training the same way: the epoch in progress is abandoned,
``last.pt`` keeps the last finished epoch, and the exit code is 130 or 143 (128 + signal)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from cnnkit.errors import CnnkitError


class Interrupted(CnnkitError):
    exit_code = 130

    def __init__(self, signal_name: str = "SIGINT", exit_code: int = 130):
        super().__init__(f"Interrupted by {signal_name}")
        self.signal_name = signal_name
        self.exit_code = exit_code

    def add_context(self, epochs_saved: int, run_dir: Path) -> None:
        self.args = (
            f"Interrupted ({self.signal_name}) after {epochs_saved} finished epoch(s); last.pt holds epoch {epochs_saved}. "
            f"Continue with: cnnkit train --resume {run_dir}",
        )


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM wait (main thread only): clean-up after the first one."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Interrupted("SIGTERM", 128 + signal.SIGTERM)


@contextlib.contextmanager
def interrupts_as_exceptions() -> Iterator[None]:
    """Within the block, SIGTERM raises like Ctrl-C does (main thread only; elsewhere unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted("SIGINT", 130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
