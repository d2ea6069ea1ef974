"""``cnnkit data``: look at a dataset before training on it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cnnkit.options import checked


@click.group()
def data() -> None:
    """Inspect datasets."""


@data.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--val-split", type=checked("val_split"), default=0.2, show_default=True,
              help="As for 'cnnkit train': the fraction held out when there is no val/ folder.")
@click.option("--seed", type=checked("seed"), default=0, show_default=True, help="As for 'cnnkit train' (which images the split holds out).")
@click.option("--memory-budget", type=checked("memory_budget"), default=2.0, show_default=True, help="As for 'cnnkit train'.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check(path: Path, val_split: float, seed: int, memory_budget: float, as_json: bool) -> None:
    """Report what the image folder PATH holds: classes and their balance, image sizes and modes,
    unreadable files, exact duplicates (and duplicates across splits: leakage), and what
    'cnnkit train --data PATH' would do with it. Exits 1 when it cannot be trained on."""
    from cnnkit.data.check import check_folder, format_report

    report = check_folder(path, val_split=val_split, seed=seed, memory_budget=memory_budget)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else format_report(report))
    if not report.trainable:
        raise SystemExit(1)
