"""``cnnkit predict`` and ``cnnkit evaluate``: using a trained checkpoint."""

from __future__ import annotations

from typing import Any

import click

from cnnkit.inference.tta import MODES
from cnnkit.registry import suggest


class TtaMode(click.ParamType):
    """One of :data:`cnnkit.inference.tta.MODES`; a misspelt one is answered with the closest."""

    name = "tta"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if value in MODES:
            return str(value)
        close = suggest(str(value), list(MODES))
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        self.fail(f"{value!r} is not one of {', '.join(repr(m) for m in MODES)}.{hint}", param, ctx)


TTA_HELP = ("Test-time augmentation: class probabilities averaged over the image and its mirror (flip), the four corners "
            "and the centre (five-crop) or those and their mirrors (ten-crop, how AlexNet was scored); the crops are cut "
            "from pictures read at the size the checkpoint's centre crop comes from (256 for 224 of 256).")


@click.command(short_help="Class probabilities of images from a checkpoint")
@click.argument("checkpoint", type=click.Path())
@click.argument("images", nargs=-1, required=True)
@click.option("--topk", type=click.IntRange(min=1), default=3, show_default=True, help="Classes shown per image.")
@click.option("--format", "form", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--cam", default="", help="Folder for a class-activation overlay (HiResCAM) per image: where the network "
              "looked for its top class.")
@click.option("--cam-layer", default="", help="With --cam: the module to take the maps at, as PyTorch names it (a layer "
              "such as layer4.1.conv2 or a block such as layer4.1; an unknown name lists those that give feature maps); "
              "default: the last feature map before the classifier.")
@click.option("--tta", type=TtaMode(), default="none", show_default=True, metavar="|".join(MODES), help=TTA_HELP)
def predict(checkpoint: str, images: tuple[str, ...], topk: int, form: str, cam: str, cam_layer: str, tta: str) -> None:
    """Class probabilities for IMAGES (files or folders), read with the checkpoint's own size,
    channels and normalisation. Unreadable images are reported per file; the others are still
    predicted (exit 1 only when none could be read)."""
    from pathlib import Path

    from cnnkit.errors import UsageError
    from cnnkit.inference.model import load_trained
    from cnnkit.inference.predict import format_predictions
    from cnnkit.inference.predict import predict as run_predict

    if cam_layer and not cam:
        raise UsageError("--cam-layer chooses where the heat maps of --cam are taken; pass --cam FOLDER too.")
    results = run_predict(load_trained(checkpoint), list(images), topk, cam=Path(cam) if cam else None, cam_layer=cam_layer, tta=tta)
    click.echo(format_predictions(results, form))
    if results and all(r.error for r in results):
        raise SystemExit(1)


@click.command(short_help="Measure a checkpoint: per-class scores, confusion, top losses")
@click.argument("checkpoint", type=click.Path())
@click.option("--data", default="", help="Dataset or folder; default: the one the checkpoint was trained on.")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--out", default="", help="Folder for metrics.json, per_class.csv, confusion.png, top_losses.png (one holding a "
              "report is refused); default: a new eval-SPLIT beside the checkpoint, eval-SPLIT-2... after the first.")
@click.option("--normalize/--counts", default=False, help="Confusion matrix as row fractions, or counts (default).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable metrics.")
@click.option("--tta", type=TtaMode(), default=None, metavar="|".join(MODES), help=TTA_HELP + " Default: ten-crop for a "
              "checkpoint trained with --augment alexnet-2012 (as the paper evaluated), else none.")
def evaluate(checkpoint: str, data: str, split: str, out: str, normalize: bool, as_json: bool, tta: str | None) -> None:
    """Accuracy (top-5 too with more than 5 classes), balanced accuracy (the mean per-class
    recall, over the classes the split has), macro F1 (the mean per-class F1 over all the
    checkpoint's classes; a score with nothing to divide by is 0, as scikit-learn's
    zero_division=0), per-class precision, recall, F1 and support; writes metrics.json (what --json prints), per_class.csv, a labelled
    confusion matrix and a gallery of the most confidently wrong images."""
    import json
    from pathlib import Path

    from cnnkit.inference.evaluate import evaluate_checkpoint, format_report

    report = evaluate_checkpoint(checkpoint, data, split, Path(out) if out else None, normalize, tta or "")
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else format_report(report))


@click.command(short_help="Export a checkpoint to ONNX, TorchScript or safetensors")
@click.argument("checkpoint", type=click.Path())
@click.option("--format", "form", type=click.Choice(["onnx", "torchscript", "safetensors"]), default="onnx", show_default=True)
@click.option("--out", default="", help="File to write; default: model.onnx (.torchscript.pt, .safetensors) beside the checkpoint.")
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
def export(checkpoint: str, form: str, out: str, force: bool) -> None:
    """Export the checkpoint's model (ONNX through PyTorch's exporter, or TorchScript) or its
    weights (safetensors), load the export back, run it on sample inputs and report the largest
    difference to PyTorch; fails above 1e-4. ONNX needs: pip install 'cnnkit[export]'."""
    from cnnkit.inference.export import export as run_export

    path, diff, runner = run_export(checkpoint, form, out, force)
    click.echo(f"wrote {path}; checked with {runner}: largest difference to PyTorch {diff:.2e}")


@click.command(short_help="Redraw a run's curves, or compare several runs")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", default="", help="The PNG to write; default: RUN/curves.png for one run (redrawn), "
              "comparison.png here for several.")
@click.option("--force", is_flag=True, help="Replace --out (or comparison.png) if it exists.")
def plot(runs: tuple[str, ...], out: str, force: bool) -> None:
    """Redraw a run's curves.png from its metrics.csv; with several runs, overlay their
    validation loss and accuracy in one comparison figure."""
    from pathlib import Path

    from cnnkit.engine.checkpoint import refuse_overwrite
    from cnnkit.engine.plots import plot_comparison, plot_curves, read_metrics, refuse_inside_runs_data
    from cnnkit.errors import UsageError

    names = [Path(run).name for run in runs]
    labels = [name if names.count(name) == 1 else str(Path(run)) for name, run in zip(names, runs)]  # tell same-named runs apart
    histories = {label: read_metrics(Path(run)) for label, run in zip(labels, runs)}
    target = Path(out) if out else Path(runs[0]) / "curves.png" if len(runs) == 1 else Path("comparison.png")
    if target.suffix.lower() != ".png" or not target.parent.is_dir():
        raise UsageError(f"--out '{target}' must be a .png file in an existing folder.")
    if out or len(runs) > 1:  # a run's own curves.png is redrawn from its metrics: that is what plot is for
        refuse_inside_runs_data(target, [Path(run) for run in runs])
        refuse_overwrite(target, force)
    if len(runs) == 1:
        plot_curves(next(iter(histories.values())), target, title=Path(runs[0]).name)
        click.echo(f"wrote {target}")
        return
    plot_comparison(histories, target)
    click.echo(f"wrote {target} ({len(runs)} runs)")
