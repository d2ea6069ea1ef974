"""``--log tensorboard``: the run as TensorBoard event files in ``<run dir>/tensorboard/``, so
``tensorboard --logdir runs/`` shows every run under its name.

Written with ``torch.utils.tensorboard.SummaryWriter``: per epoch (step = epoch) the scalars
``loss/train``, ``loss/val``, ``accuracy/train``, ``accuracy/val`` (fractions, as metrics.csv),
``lr`` and ``epoch_seconds``, flushed at once so a killed run keeps its epochs; the options as
hyper-parameters (the HParams dashboard, in the same folder: no second run appears); at the end
``best/val_loss``, ``best/val_accuracy``, ``best/epoch`` and, after a test split,
``loss/test`` and ``accuracy/test`` (step = epochs done), with the figures
``figures/learning_curves`` and ``figures/confusion_matrix``.

A resumed run writes into the same folder. Its new event file starts with a restart marker at
step 1 (``purge_step``), which makes TensorBoard's readers drop every earlier step, and then logs
the run's whole history again from ``last.pt``: each epoch is shown exactly once, even when the
interrupted process saved an epoch it never got to log.
"""

from __future__ import annotations

import io
from typing import Any

import tensorboard  # noqa: F401  (the package torch.utils.tensorboard writes with: ImportError names it when missing)
from torch.utils.tensorboard import SummaryWriter

from cnnkit.contracts._callbacks import Callback, CallbackOptions, EpochEnded, Row, RunEnded, RunStarted
from cnnkit.tracking.figures import confusion_png, curves_png
from cnnkit.tracking.parameters import run_parameters

FOLDER = "tensorboard"
"""The run directory's sub-folder that holds the event files."""

EPOCH_TAGS = {"train_loss": "loss/train", "val_loss": "loss/val", "train_acc": "accuracy/train", "val_acc": "accuracy/val",
              "lr": "lr", "seconds": "epoch_seconds"}
"""The scalar tag of each ``metrics.csv`` column logged per epoch."""

END_TAGS = {"val_loss": "best/val_loss", "val_acc": "best/val_accuracy"}
TEST_TAGS = {"loss": "loss/test", "acc": "accuracy/test"}


def hparam_value(value: Any) -> Any:
    """A value the HParams plugin takes (number, bool or text; None is left out)."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


class TensorBoardCallback(Callback):
    """Writes one run's event files; see the module's docstring for what goes where."""

    def __init__(self, options: CallbackOptions):
        self.options = options
        self.writer: SummaryWriter | None = None
        self.title = ""

    def run_started(self, event: RunStarted) -> None:
        folder = event.run_dir / FOLDER
        new = not any(folder.glob("events.out.tfevents.*"))
        self.writer = SummaryWriter(str(folder), purge_step=1 if event.history else None)
        self.title = f"{event.model} on {event.options.get('data', '')}"
        if new:
            self.write_hparams(run_parameters(event))
        for row in event.history:
            self.write_epoch(row)
        self.writer.flush()

    def write_hparams(self, values: dict[str, Any]) -> None:
        """The session's hyper-parameters, written as ``SummaryWriter.add_hparams`` writes them but
        into this writer's folder. No experiment summary: the dashboard then gathers the
        hyper-parameters of every run under ``--logdir`` and takes each scalar tag as a metric."""
        from torch.utils.tensorboard.summary import hparams

        _, session_start, _ = hparams({key: hparam_value(value) for key, value in values.items()}, {})
        self.file_writer().add_summary(session_start)

    def file_writer(self) -> Any:
        assert self.writer is not None, "run_started opens the writer"
        return self.writer.file_writer

    def write_epoch(self, row: Row) -> None:
        assert self.writer is not None, "run_started opens the writer"
        step = int(row["epoch"])
        for column, tag in EPOCH_TAGS.items():
            if column in row:
                self.writer.add_scalar(tag, float(row[column]), step)

    def epoch_ended(self, event: EpochEnded) -> None:
        assert self.writer is not None, "run_started opens the writer"
        self.write_epoch(event.metrics)
        self.writer.flush()

    def run_ended(self, event: RunEnded) -> None:
        writer = self.writer
        if writer is None:
            return
        step = event.epochs_done
        if event.best_epoch:
            writer.add_scalar("best/epoch", event.best_epoch, step)
            for key, tag in END_TAGS.items():
                if key in event.best:
                    writer.add_scalar(tag, float(event.best[key]), step)
        for key, value in (event.test or {}).items():
            writer.add_scalar(TEST_TAGS.get(key, f"test/{key}"), float(value), step)
        for tag, png in (("figures/learning_curves", curves_png(event, self.title)), ("figures/confusion_matrix", confusion_png(event))):
            if png is not None:
                writer.add_image(tag, png_pixels(png), step, dataformats="HWC")
        writer.close()
        self.writer = None


def png_pixels(png: bytes) -> Any:
    """A PNG as an RGB ``uint8`` array of shape (height, width, 3)."""
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(png)) as picture:
        return np.asarray(picture.convert("RGB"))
