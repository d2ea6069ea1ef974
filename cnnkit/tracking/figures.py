"""The pictures a tracker shows at the end of a run: the learning curves and the confusion matrix."""

from __future__ import annotations

from cnnkit.contracts._callbacks import RunEnded


def curves_png(event: RunEnded, title: str) -> bytes | None:
    """The run's ``curves.png`` as written, or drawn from its history when the file is missing
    (None before the first epoch)."""
    written = event.files.get("curves.png")
    if written is not None:
        try:
            return written.read_bytes()
        except OSError:
            pass
    if not event.history:
        return None
    from cnnkit.engine.plots import curves_png as draw

    return draw([dict(row) for row in event.history], title)


def confusion_png(event: RunEnded) -> bytes | None:
    """The test split's confusion matrix in counts (rows: true class, columns: predicted), as
    ``cnnkit evaluate`` draws it; None when the run has none."""
    if event.confusion is None:
        return None
    import torch

    from cnnkit.inference.figures import confusion_figure

    return confusion_figure(torch.tensor(event.confusion), list(event.classes), normalize=False)
