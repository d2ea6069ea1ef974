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
@click.argument("path")
@click.option("--val-split", type=checked("val_split"), default=0.2, show_default=True,
              help="As for 'cnnkit train': the fraction held out when there is no val/ folder.")
@click.option("--seed", type=checked("seed"), default=0, show_default=True,
              help="As for 'cnnkit train' (which images the split holds out).")
@click.option("--memory-budget", type=checked("memory_budget"), default=2.0, show_default=True, help="As for 'cnnkit train'.")
@click.option("--data-dir", type=checked("data_dir"), default="",
              help="As for 'cnnkit train': where built-in datasets keep their files.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check(path: str, val_split: float, seed: int, memory_budget: float, data_dir: str, as_json: bool) -> None:
    """Report what the image folder PATH holds: classes and their balance, image sizes and modes,
    unreadable files, exact duplicates (across splits: leakage; across classes: a label conflict),
    and what 'cnnkit train --data PATH' would do with it. PATH is read as --data reads it: a
    built-in dataset's name ('digits', 'mnist') checks that dataset; ./digits is the folder.
    Exits 1 when it cannot be trained on."""
    from cnnkit.data.check import check_folder, format_report
    from cnnkit.data.resolve import resolve_data
    from cnnkit.plugins import registry

    resolve_data(path)  # as --data reads it: did-you-mean for a misspelt name, a note for a folder named like a dataset
    if path in registry("datasets"):
        report = named_report(path, val_split, seed, data_dir)
    else:
        report = check_folder(Path(path).expanduser(), val_split=val_split, seed=seed, memory_budget=memory_budget,
                              given=path)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else format_report(report))
    if not report.trainable:
        raise SystemExit(1)


def named_report(name: str, val_split: float, seed: int, data_dir: str):
    """The dataset's report, or None after one line saying why it is not checked (exit 0)."""
    from cnnkit.console import note
    from cnnkit.data.check_named import NotChecked, check_named

    try:
        return check_named(name, val_split, seed, data_dir)
    except NotChecked as exc:
        note(str(exc))
        raise SystemExit(0) from None
