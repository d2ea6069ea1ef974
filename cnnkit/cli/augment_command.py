"""``cnnkit augment``: list the augmentations, and preview what a spec does to an image."""

from __future__ import annotations

from pathlib import Path

import click

from cnnkit.options import checked


@click.group()
def augment() -> None:
    """Augmentations: list them, preview them."""


@augment.command(name="list")
def list_augmentations() -> None:
    """Every augmentation and preset, with its parameters (as 'cnnkit augmentations')."""
    from cnnkit.cli.listing import format_table
    from cnnkit.plugins import registry

    entries = registry("augmentations").entries()
    rows = [(e.name, e.metadata.get("stage", "sample"), e.help) for e in entries]
    click.echo(format_table(rows, ("NAME", "STAGE", "WHAT IT DOES (PARAMETERS)")))


@augment.command()
@click.option("--augment", "spec", required=True, type=checked("augment"), help="The spec, as for 'cnnkit train --augment'.")
@click.option("--image", default="", help="An image file to augment (default: the shipped digits).")
@click.option("--data", default="digits", show_default=True, help="A dataset or folder to take two images from.")
@click.option("--size", type=click.IntRange(min=8, max=1024), default=None, help="Output size; default 224 for --image, 64 for data.")
@click.option("--grid", default="3x3", show_default=True, help="COLUMNSxROWS of the sheet; the first cell is the original.")
@click.option("--seed", type=checked("seed"), default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("preview.png"), show_default=True)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def preview(spec: str, image: str, data: str, size: int | None, grid: str, seed: int, out: Path, force: bool) -> None:
    """Write a PNG grid: the original and augmented variants, each captioned (mixup and cutmix:
    the label weights of the pair, A the first image and B the second)."""
    from cnnkit.augment.pipeline import resolve
    from cnnkit.engine.checkpoint import data_folder, refuse_inside_data, refuse_overwrite
    from cnnkit.errors import UsageError
    from cnnkit.inference.preview import render, sample_images, variants
    from cnnkit.plugins import registry

    if out.suffix.lower() != ".png":
        raise UsageError(f"--out '{out}' must end in .png.")
    if not out.parent.is_dir():
        raise UsageError(f"--out '{out}': the folder '{out.parent}' does not exist.")
    refuse_inside_data(out, data_folder(data.strip()), "--out", f"the image folder --data {data} reads", "path")
    refuse_overwrite(out, force)
    if not image and not data.strip():
        raise UsageError("--data must not be empty; pass a dataset name or a folder (or --image FILE).")
    parts = grid.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and 0 < int(p) <= 12 for p in parts):
        raise UsageError(f"--grid '{grid}' must be COLUMNSxROWS with 1 to 12 each, e.g. 3x3.")
    columns, rows = int(parts[0]), int(parts[1])
    side = size or (224 if image else 64)
    resolved = resolve(spec, registry("augmentations"), (side, side))
    images, title = sample_images(image, data, (side, side), seed)
    cells = variants(resolved, images, (side, side), columns * rows, seed)
    render(cells, columns, f"{title} - {spec} (seed {seed})", out)
    click.echo(f"wrote {out} ({columns}x{rows}: the original and {columns * rows - 1} variants)")
