"""``cnnkit runs [OUT]``: a table of the run directories under a folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from cnnkit.cli.listing import format_table

HEADERS = ("NAME", "MODEL", "DATA", "EPOCHS", "VAL ACC", "TEST ACC", "TIME", "STATUS")
SORT_HELP = "name, model, data, epochs, val (accuracy), test (accuracy), time or status; numbers sort largest first"


def duration(seconds: float | None) -> str:
    """``41.3s``, ``12m05s``, ``3h07m``; ``-`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m{int(seconds % 60):02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def percent(value: float | None) -> str:
    return f"{value:.2%}" if value is not None and math.isfinite(value) else "-"


def epochs(done: int | None, planned: int | None) -> str:
    if done is None and planned is None:
        return "-"
    return f"{'?' if done is None else done}/{'?' if planned is None else planned}"


def finite(value: object) -> object:
    """JSON has no NaN or infinity: those numbers are written as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


@click.command(
    short_help="List the runs under a folder: model, data, epochs, accuracy, time and status.",
    help="List the run directories under OUT (default runs/, train's --out): name, model, data, epochs done of "
    "those planned, validation accuracy of the best epoch (the one best.pt holds), test accuracy, the epochs' time, "
    "and status: running, finished, stopped early, interrupted (resume it with 'cnnkit train --resume DIR'), failed; "
    "a folder or file that is not a run, or a run missing its files, is listed as 'not a run' or 'damaged'.",
)
@click.argument("out", default="runs", required=False)
@click.option("--name", "patterns", multiple=True, metavar="PATTERN",
              help="Only runs whose name matches this wildcard, e.g. 'resnet*' (repeat for more).")
@click.option("--sort", "column", default="name", show_default=True, metavar="COLUMN", help=f"The column to sort by: {SORT_HELP}.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output: a list of objects, one per run.")
def runs(out: str, patterns: tuple[str, ...], column: str, as_json: bool) -> None:
    from cnnkit.inference.runs import list_runs, matching, sorted_runs

    summaries = sorted_runs(matching(list_runs(Path(out).expanduser()), patterns), column)
    if as_json:
        records = [{key: finite(value) for key, value in s.as_dict().items()} for s in summaries]
        click.echo(json.dumps(records, indent=2))
        return
    if not summaries:
        wanted = f" match {' or '.join(repr(p) for p in patterns)}" if patterns else ""
        click.echo(f"No runs in '{out}'{wanted}." if wanted else f"No runs in '{out}'.")
        return
    rows = [(s.name, s.model or "-", s.data or "-", epochs(s.epochs_done, s.epochs_planned), percent(s.best_val_acc),
             percent(s.test_acc), duration(s.seconds), s.status) for s in summaries]
    click.echo(format_table(rows, HEADERS))
    for s in summaries:
        if s.note:
            click.echo(f"{s.name}: {s.note}")
