"""``cnnkit evaluate``: how a checkpoint does on a split, per class, and where it fails."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from cnnkit.engine.checkpoint import atomic_write, fresh_folder, make_folder
from cnnkit.errors import UsageError
from cnnkit.inference.model import Trained, load_trained


@dataclass
class ClassRow:
    name: str
    precision: float
    recall: float
    f1: float
    support: int
    predicted: int = 0
    """Images predicted as this class."""

    @property
    def present(self) -> bool:
        """Whether the class has images in the split or was predicted: the classes macro means
        average over, as scikit-learn's do by default (a class with neither has no score)."""
        return bool(self.support or self.predicted)


@dataclass
class Report:
    checkpoint: str
    data: str
    split: str
    images: int
    accuracy: float
    top5: float | None
    balanced_accuracy: float = 0.0
    """The mean recall over the classes with images in the split (see :func:`balanced_accuracy`)."""
    macro_f1: float = 0.0
    """The mean F1 over every class of the checkpoint (see :func:`macro_f1`)."""
    classes: list[ClassRow] = field(default_factory=list)
    macro: dict[str, float] = field(default_factory=dict)
    confusion: list[list[int]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    tta: str = "none"
    """The test-time augmentation the probabilities were averaged over (:mod:`cnnkit.inference.tta`)."""

    def as_dict(self) -> dict:
        return asdict(self)


def read_split(trained: Trained, spec: str, split: str, tta: str = "none"):
    """The split of the checkpoint's data (or of ``spec``), read as training read it; for the
    crops of ``tta``, whole pictures at the larger size they are cut from."""
    from cnnkit.contracts._data import DataRequest
    from cnnkit.data.images import run_reads_as_weights
    from cnnkit.data.resolve import resolve_data
    from cnnkit.inference.tta import read_size

    config = trained.saved.get("config", {})
    spec = spec or str(config.get("data") or "")
    if not spec:
        raise UsageError("The checkpoint does not name its data; pass --data.")
    size, crop_fraction = read_size(trained, tta)
    request = DataRequest(image_size=size, channels=trained.input_size[0], val_split=float(config.get("val_split", 0.2)),
                          seed=int(config.get("seed", 0)), data_dir=str(config.get("data_dir", "")),
                          crop_fraction=crop_fraction, interpolation=trained.interpolation,
                          as_weights=run_reads_as_weights(config))
    data = resolve_data(spec).create(request)
    if list(data.classes) != trained.classes:
        raise UsageError(f"--data {spec} has classes {data.classes[:5]}{'...' if len(data.classes) > 5 else ''}, the checkpoint "
                         f"{trained.classes[:5]}{'...' if len(trained.classes) > 5 else ''}; evaluate on data with the same classes.")
    part = getattr(data, split)
    if part is None:
        raise UsageError(f"{spec} has no {split} split; pass --split val.")
    return spec, part


def predictions(trained: Trained, part, batch_size: int = 256, tta: str = "none") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(probabilities, labels, uint8 images) of the whole split, in order; the probabilities
    averaged over the views of ``tta``, the images the centre view (as the model sees them without)."""
    from cnnkit.inference.tta import averaged_probabilities, centre_view

    chunks = [slice(i, min(i + batch_size, len(part))) for i in range(0, len(part), batch_size)]
    probs, labels, images = [], [], []
    with torch.inference_mode():
        for batch, batch_labels in part.batches(chunks, torch.device("cpu")):
            probs.append(averaged_probabilities(trained, batch, tta))
            labels.append(batch_labels)
            images.append(centre_view(batch, trained))
    return torch.cat(probs), torch.cat(labels), torch.cat(images)


def per_class(confusion: torch.Tensor, names: list[str]) -> list[ClassRow]:
    rows = []
    for i, name in enumerate(names):
        tp = confusion[i, i].item()
        predicted, actual = confusion[:, i].sum().item(), confusion[i].sum().item()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(ClassRow(name, precision, recall, f1, int(actual), int(predicted)))
    return rows


def balanced_accuracy(rows: list[ClassRow]) -> float:
    """The mean of the per-class recalls, over the classes with images in the split (a class
    without any has no recall), as scikit-learn's ``balanced_accuracy_score``: each class counts
    the same however many images it has."""
    present = [row.recall for row in rows if row.support]
    return sum(present) / len(present) if present else 0.0


def macro(rows: list[ClassRow]) -> dict[str, float]:
    """Precision, recall and F1 averaged over the classes present (with images in the split, or
    predicted), as scikit-learn's ``precision_recall_fscore_support(average="macro",
    zero_division=0)`` with its default labels: a score with nothing to divide by is 0, and a class
    neither in the split nor predicted is left out (it would count as 0 otherwise, so a perfect
    classifier on a split lacking a class would score below 1)."""
    present = [row for row in rows if row.present]
    return {m: sum(getattr(r, m) for r in present) / len(present) if present else 0.0 for m in ("precision", "recall", "f1")}


def macro_f1(rows: list[ClassRow]) -> float:
    """The mean per-class F1 over the classes present (see :func:`macro`)."""
    return macro(rows)["f1"]


REPORT_FILES = ("metrics.json", "per_class.csv", "confusion.png", "top_losses.png")


def check_out(out: Path | None) -> None:
    """An explicit ``--out`` that already holds a report is refused: nothing written is replaced."""
    if out is None:
        return
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out '{out}' is a file; name a folder for the report.")
    held = [name for name in REPORT_FILES if (out / name).exists()]
    if held:
        raise UsageError(f"--out '{out}' already holds a report ({', '.join(held)}); choose another folder, or leave out "
                         "--out for a new numbered one beside the checkpoint.")


def report_folder(checkpoint: str, split: str, out: Path | None) -> Path:
    """``out``, or a new ``eval-<split>`` beside the checkpoint (``eval-<split>-2``... when earlier
    reports are there, numbered as run directories are)."""
    if out is not None:
        return make_folder(out)
    source = Path(checkpoint)
    return fresh_folder(source if source.is_dir() else source.parent, f"eval-{split}")


def evaluate_checkpoint(checkpoint: str, spec: str, split: str, out: Path | None, normalize: bool, tta: str = "") -> Report:
    """The report of ``checkpoint`` on ``split``; ``tta`` empty: the checkpoint's default
    (:func:`cnnkit.inference.tta.default_mode`: ten crops for ``alexnet-2012``, else none)."""
    from cnnkit.console import note
    from cnnkit.inference.predict import check_output_folder
    from cnnkit.inference.tta import PAPER_PRESET, default_mode

    check_out(out)
    trained = load_trained(checkpoint)
    if out is not None:
        check_output_folder(out, trained, "--out")
    if not tta:
        tta = default_mode(trained)
        if tta != "none":
            note(f"this checkpoint was trained with --augment {PAPER_PRESET}: evaluated on {tta} as the paper did "
                 "(--tta none for the centre crop alone).")
    spec, part = read_split(trained, spec, split, tta)
    probs, labels, images = predictions(trained, part, tta=tta)
    k = len(trained.classes)
    predicted = probs.argmax(1)
    confusion = torch.bincount(labels * k + predicted, minlength=k * k).view(k, k)
    top5 = (probs.topk(5, dim=1).indices == labels[:, None]).any(1).float().mean().item() if k > 5 else None
    rows = per_class(confusion, trained.classes)
    averages = macro(rows)
    report = Report(str(checkpoint), spec, split, len(labels), (predicted == labels).double().mean().item(), top5,
                    balanced_accuracy(rows), averages["f1"], rows, averages, confusion.tolist(), tta=tta)
    folder = report_folder(checkpoint, split, out)
    report.files = [str(folder / name) for name in REPORT_FILES]
    write_outputs(folder, report, trained.classes, confusion, normalize, probs, labels, images)
    return report


def write_outputs(folder: Path, report: Report, names, confusion, normalize, probs, labels, images) -> None:
    """The report's files: ``metrics.json`` (what ``--json`` prints), ``per_class.csv`` and the figures."""
    import json

    from cnnkit.inference.figures import confusion_figure, top_losses_figure

    atomic_write(folder / "metrics.json", (json.dumps(report.as_dict(), indent=2) + "\n").encode())
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["class", "precision", "recall", "f1", "support"])
    for row in report.classes:
        writer.writerow([row.name, f"{row.precision:.4f}", f"{row.recall:.4f}", f"{row.f1:.4f}", row.support])
    atomic_write(folder / "per_class.csv", table.getvalue().encode())
    atomic_write(folder / "confusion.png", confusion_figure(confusion, names, normalize))
    atomic_write(folder / "top_losses.png", top_losses_figure(probs, labels, images, names))


def format_report(report: Report) -> str:
    width = max(len(r.name) for r in report.classes + [ClassRow("class", 0, 0, 0, 0)])
    top5 = f", top-5 {100 * report.top5:.2f}%" if report.top5 is not None else ""
    tta = f", {report.tta} TTA (probabilities averaged over its views)" if report.tta != "none" else ""
    balanced = f", balanced accuracy {100 * report.balanced_accuracy:.2f}%, macro F1 {report.macro_f1:.3f}"
    lines = [f"{report.data} {report.split}: {report.images} images, accuracy {100 * report.accuracy:.2f}%{top5}{balanced}{tta}",
             f"{'class'.ljust(width)}  precision  recall     f1  support"]
    for r in report.classes:
        lines.append(f"{r.name.ljust(width)}  {r.precision:9.3f}  {r.recall:6.3f}  {r.f1:5.3f}  {r.support:7d}")
    m = report.macro
    lines.append(f"{'macro'.ljust(width)}  {m['precision']:9.3f}  {m['recall']:6.3f}  {m['f1']:5.3f}  {report.images:7d}")
    if report.files:
        lines.append(f"wrote {', '.join(Path(f).name for f in report.files)} in {Path(report.files[0]).parent}")
    return "\n".join(lines)
