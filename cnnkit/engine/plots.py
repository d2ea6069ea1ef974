"""Learning curves: loss and accuracy per epoch, train against validation."""

from __future__ import annotations

import io
from pathlib import Path

from cnnkit.engine.checkpoint import atomic_write


def plot_curves(history: list[dict[str, float]], path: Path, title: str = "") -> None:
    """``curves.png``: the learning curves of ``history`` (see :func:`curves_png`), written atomically."""
    atomic_write(path, curves_png(history, title))


def curves_png(history: list[dict[str, float]], title: str = "") -> bytes:
    """Loss and accuracy per epoch, train against validation, as PNG bytes (two panels, one point per row)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for split, style in (("train", "-o"), ("val", "-s")):
        loss_ax.plot(epochs, [row[f"{split}_loss"] for row in history], style, markersize=3, label=split)
        acc_ax.plot(epochs, [100 * row[f"{split}_acc"] for row in history], style, markersize=3, label=split)
    loss_ax.set(xlabel="epoch", ylabel="loss", title="Loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def read_metrics(run: Path) -> list[dict[str, float]]:
    """A run directory's metrics.csv as rows of numbers."""
    import csv

    from cnnkit.errors import UsageError

    path = run / "metrics.csv"
    if not path.is_file():
        raise UsageError(f"'{run}' has no metrics.csv; pass a run directory written by cnnkit train.")
    needed = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc"}
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if not needed <= set(reader.fieldnames or ()):
                raise ValueError
            rows = [{k: float(v) for k, v in row.items()} for row in reader]
    except (ValueError, TypeError, UnicodeDecodeError):
        raise UsageError(f"'{path}' is not a metrics file cnnkit wrote.") from None
    if not rows:
        raise UsageError(f"'{path}' has no epochs yet.")
    return rows


def recorded_data(run: Path) -> str:
    """The ``--data`` a run trained on, as its config.json records it ("" when it cannot be read)."""
    import json

    try:
        config = json.loads((run / "config.json").read_text())
    except (OSError, ValueError):
        return ""
    data = config.get("data") if isinstance(config, dict) else None
    return data if isinstance(data, str) else ""


def refuse_inside_runs_data(target: Path, runs: list[Path], option: str = "--out") -> None:
    """A figure is never written into the image folder one of ``runs`` trained on."""
    from cnnkit.engine.checkpoint import data_folder, refuse_inside_data

    for run in runs:
        refuse_inside_data(target, data_folder(recorded_data(run)), option, f"the training data of run '{run}'", "path")


def plot_comparison(histories: dict[str, list[dict[str, float]]], path: Path) -> None:
    """Validation loss and accuracy of several runs, one line each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for name, history in histories.items():
        epochs = [row["epoch"] for row in history]
        loss_ax.plot(epochs, [row["val_loss"] for row in history], "-o", markersize=3, label=name)
        acc_ax.plot(epochs, [100 * row["val_acc"] for row in history], "-o", markersize=3, label=name)
    loss_ax.set(xlabel="epoch", ylabel="validation loss", title="Validation loss")
    acc_ax.set(xlabel="epoch", ylabel="validation accuracy (%)", title="Validation accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, buffer.getvalue())
