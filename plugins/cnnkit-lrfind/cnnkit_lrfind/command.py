"""``cnnkit lr-find``: the learning-rate range test on a model and data chosen as ``cnnkit train``
chooses them; prints the suggested rate and writes the loss curve.

The run is built by cnnkit's own training setup, through ``cnnkit.contracts.prepare_training`` (so
data, augmentation, normalisation, precision and initializer are exactly what ``train`` would use).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

AS_TRAIN = "(default: as cnnkit train)"


def _finite(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise click.BadParameter(f"must be a number above 0, got {value}")
    return value


@click.command("lr-find", short_help="Learning-rate range test (fastai's lr_find) and a suggested rate")
@click.option("--model", default=None, help=f"Registered model name (see 'cnnkit models') {AS_TRAIN}.")
@click.option("--model-kwargs", default=None, help="Model arguments, KEY=VALUE[,KEY=VALUE].")
@click.option("--data", default=None, help=f"Registered dataset or an ImageFolder folder {AS_TRAIN}.")
@click.option("--data-dir", default=None, help="Where datasets known by name keep their files.")
@click.option("--image-size", default=None, help="Input size N or HxW; default: the model's own.")
@click.option("--batch-size", type=int, default=None, help=f"Images per step {AS_TRAIN}.")
@click.option("--optimizer", default=None, help=f"sgd, adam or adamw {AS_TRAIN}.")
@click.option("--momentum", type=float, default=None, help="SGD momentum.")
@click.option("--weight-decay", type=float, default=None, help=AS_TRAIN)
@click.option("--label-smoothing", type=float, default=None, help=AS_TRAIN)
@click.option("--augment", default=None, help="Augmentations, as for cnnkit train (see 'cnnkit augmentations').")
@click.option("--init", default=None, help="Weight initializer (see 'cnnkit initializers').")
@click.option("--seed", type=int, default=None, help=AS_TRAIN)
@click.option("--device", default=None, help="auto, cpu, cuda[:N] or mps.")
@click.option("--precision", default=None, help="auto, fp32, bf16 or fp16.")
@click.option("--start-lr", type=float, default=1e-7, show_default=True, callback=_finite, help="Rate of the first step.")
@click.option("--end-lr", type=float, default=10.0, show_default=True, callback=_finite,
              help="Rate the steps rise towards (exponentially).")
@click.option("--num-it", type=click.IntRange(min=6), default=100, show_default=True, help="Steps (one batch each).")
@click.option("--stop-div/--no-stop-div", default=True, show_default=True,
              help="Stop once the smoothed loss exceeds 4 times its minimum.")
@click.option("--suggest", type=click.Choice(["valley", "steep", "minimum"]), default="valley", show_default=True,
              help="fastai's rule: valley (its default), steep (steepest descent) or minimum (a tenth of the lowest loss's rate).")
@click.option("--out", default="lr-find.png", show_default=True, help="The plot (PNG) to write.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def lr_find(start_lr: float, end_lr: float, num_it: int, stop_div: bool, suggest: str, out: str, force: bool,
            **train_options: Any) -> None:
    """Find a learning rate: train one batch per step at rates rising exponentially from --start-lr
    to --end-lr, plot the smoothed loss, and print the rate fastai's rule suggests. The model and
    optimizer are put back afterwards (nothing is trained for real, no run directory is written).
    """
    from cnnkit.contracts import prepare_training
    from cnnkit_lrfind.finder import range_test
    from cnnkit_lrfind.finder import suggest as suggestion_for
    from cnnkit_lrfind.plot import plot

    path = writable_png(out, force)
    if start_lr >= end_lr:
        raise click.BadParameter(f"--start-lr {start_lr:g} must be below --end-lr {end_lr:g}", param_hint="'--start-lr'")
    session = prepare_training(**{name: value for name, value in train_options.items() if value is not None}, lr=start_lr)
    try:
        curve = range_test(session.model, session.optimizer, session.step, start_lr=start_lr, end_lr=end_lr,
                           num_it=num_it, stop_div=stop_div)
    finally:
        session.close()
    stopped = f"; stopped early: {curve.stopped}" if curve.stopped else ""
    try:
        suggestion = suggestion_for(curve, suggest)
    except ValueError as exc:
        raise click.ClickException(f"No suggestion: {exc}{stopped}. Start lower (--start-lr) or take more steps (--num-it).") from None
    plot(curve, suggestion, path, title=f"{session.model_name} on {session.data_name}")
    click.echo(f"Range test: {len(curve.lrs)} steps at lr {curve.lrs[0]:.2e} to {curve.lrs[-1]:.2e}{stopped}")
    click.echo(f"Suggested learning rate ({suggest}): {suggestion.lr:.2e}")
    click.echo(f"Plot: {path}")


def writable_png(out: str, force: bool) -> Path:
    """``--out`` checked before any work: a .png path in an existing folder, not overwritten unless forced."""
    path = Path(out).expanduser()
    if path.suffix.lower() != ".png":
        raise click.BadParameter(f"'{out}' must name a .png file", param_hint="'--out'")
    if path.is_dir():
        raise click.BadParameter(f"'{out}' is a folder; name a .png file", param_hint="'--out'")
    if not path.parent.is_dir():
        raise click.BadParameter(f"the folder '{path.parent}' does not exist", param_hint="'--out'")
    if path.exists() and not force:
        raise click.BadParameter(f"'{out}' exists; pass --force to overwrite it", param_hint="'--out'")
    return path

