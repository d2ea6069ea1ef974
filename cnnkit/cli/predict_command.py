"""``cnnkit predict`` and ``cnnkit evaluate``: using a trained checkpoint."""

from __future__ import annotations

import click


@click.command()
@click.argument("checkpoint", type=click.Path())
@click.argument("images", nargs=-1, required=True)
@click.option("--topk", type=click.IntRange(min=1), default=3, show_default=True, help="Classes shown per image.")
@click.option("--format", "form", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def predict(checkpoint: str, images: tuple[str, ...], topk: int, form: str) -> None:
    """Class probabilities for IMAGES (files or folders), read with the checkpoint's own size,
    channels and normalisation. Unreadable images are reported per file; the others are still
    predicted (exit 1 only when none could be read)."""
    from cnnkit.inference.model import load_trained
    from cnnkit.inference.predict import format_predictions, predict as run_predict

    results = run_predict(load_trained(checkpoint), list(images), topk)
    click.echo(format_predictions(results, form))
    if results and all(r.error for r in results):
        raise SystemExit(1)


@click.command()
@click.argument("checkpoint", type=click.Path())
@click.option("--data", default="", help="Dataset or folder; default: the one the checkpoint was trained on.")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--out", default="", help="Folder for confusion.png, per_class.csv, top_losses.png; default: beside the checkpoint.")
@click.option("--normalize/--counts", default=False, help="Confusion matrix as row fractions, or counts (default).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable metrics.")
def evaluate(checkpoint: str, data: str, split: str, out: str, normalize: bool, as_json: bool) -> None:
    """Accuracy (top-5 too with more than 5 classes), per-class precision, recall, F1 and support,
    macro averages; writes a labelled confusion matrix, per_class.csv and a gallery of the most
    confidently wrong images."""
    import json
    from pathlib import Path

    from cnnkit.inference.evaluate import evaluate_checkpoint, format_report

    report = evaluate_checkpoint(checkpoint, data, split, Path(out) if out else None, normalize)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else format_report(report))
