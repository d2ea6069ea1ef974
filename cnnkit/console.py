"""Notes and warnings for the person at the terminal, on stderr, printed by one process only."""

from __future__ import annotations

import os

import click


def _main_process() -> bool:
    """Rank 0 of a distributed job (``RANK`` is set by the launcher), or a plain process."""
    return os.environ.get("RANK", "0") == "0"


def note(message: str) -> None:
    if _main_process():
        click.echo(f"cnnkit: note: {message}", err=True)


def warn(message: str) -> None:
    if _main_process():
        click.echo(f"cnnkit: warning: {message}", err=True)
