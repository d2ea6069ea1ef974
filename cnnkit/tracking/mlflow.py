"""``--log mlflow``: the run as an MLflow run, through an ``MlflowClient`` bound to one tracking
URI (never MLflow's global "active run", so nothing carries over between runs in one process).

- Where: ``--log-uri``, else MLflow's own default (``$MLFLOW_TRACKING_URI``, else what MLflow
  picks: ``sqlite:///mlflow.db`` in the working folder since MLflow 3, with artifacts under
  ``./mlruns``); the experiment ``$MLFLOW_EXPERIMENT_NAME``, else ``cnnkit``.
- The MLflow run is named as cnnkit's run and tagged ``cnnkit.run_dir`` (the run directory's
  absolute path), ``cnnkit.model``, ``cnnkit.data``, ``cnnkit.version``.
- Params: the options as config.json records them, the model's parameter counts, the number of
  classes and images per split, as text (as MLflow keeps them).
- Metrics per epoch, step = epoch: ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``,
  ``lr``, ``epoch_seconds``; when the run finishes or stops early also ``best_epoch``,
  ``best_val_loss``, ``best_val_acc`` and, after a test split, ``test_loss``, ``test_acc``.
- At the end: the run directory's files as artifacts (``config.json``, ``metrics.csv``,
  ``curves.png`` and ``best.pt``, the best weights, at the artifact root as in the run directory,
  so a downloaded copy works with ``cnnkit evaluate``; ``last.pt`` is left out: it only serves
  ``--resume``, which reads the run directory), ``confusion.png`` after a test split, the tag
  ``cnnkit.status`` (finished, stopped early, interrupted, failed; ``cnnkit.error`` says why a
  failed run failed) and MLflow's status: FINISHED, KILLED (interrupted) or FAILED.

A resumed run continues its MLflow run: the newest active run of the experiment tagged with the
same run directory (a tag, not an id file in the run directory: the run directory keeps only
cnnkit's files, and the tag lets anyone find a directory's MLflow run). It is set RUNNING again,
gets the params it lacks (MLflow refuses to change a logged param: values changed on resume keep
their first value) and every epoch of the run's history missing from its metric history, so each
epoch is logged exactly once. A moved run directory, another ``--log-uri`` or another experiment
starts a new MLflow run holding the whole history.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from cnnkit import __version__
from cnnkit.console import warn
from cnnkit.contracts._callbacks import Callback, CallbackOptions, EpochEnded, Row, RunEnded, RunStarted
from cnnkit.errors import UsageError
from cnnkit.tracking.figures import confusion_png
from cnnkit.tracking.parameters import run_parameters, without_password

EXPERIMENT = "cnnkit"
"""The experiment a run goes to when ``$MLFLOW_EXPERIMENT_NAME`` is not set."""

RUN_DIR_TAG = "cnnkit.run_dir"

METRIC_NAMES = {"train_loss": "train_loss", "train_acc": "train_acc", "val_loss": "val_loss", "val_acc": "val_acc",
                "lr": "lr", "seconds": "epoch_seconds"}
"""The metric name of each ``metrics.csv`` column logged per epoch."""

STATUS = {"finished": "FINISHED", "stopped early": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}

DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
"""Tracking URIs MLflow serves through SQLAlchemy and Alembic (a scheme may add ``+driver``)."""

MAX_PARAM = 6000
MAX_TAG = 8000
PARAMS_PER_CALL = 100
METRICS_PER_CALL = 1000
SEND_EVERY = 2.0
"""Seconds between two sendings of epoch metrics, at least (see ``MLflowCallback.epoch_ended``)."""
"""MLflow's limits: characters of a param value and of a tag value, params and metrics per ``log_batch``."""


def needs_database(uri: str) -> bool:
    return urlparse(uri).scheme.split("+")[0] in DATABASE_SCHEMES


SERVER_SCHEMES = ("http", "https", "databricks")


def check_uri(uri: str) -> None:
    """Refuse, before anything is built, a tracking URI MLflow cannot work with: an unknown scheme,
    or a folder (MLflow's file store), which MLflow 3 refuses unless ``MLFLOW_ALLOW_FILE_STORE``
    is set."""
    scheme = urlparse(uri).scheme.split("+")[0]
    if len(scheme) == 1:  # a Windows drive letter: a folder
        scheme = ""
    if scheme in DATABASE_SCHEMES or scheme in SERVER_SCHEMES:
        return
    if scheme not in ("", "file"):
        raise UsageError(f"--log-uri {uri!r}: MLflow has no tracking store for '{scheme}:'; use sqlite:///FILE.db, "
                         "http(s)://SERVER, or a postgresql://, mysql:// or mssql:// database.")
    allowed = os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("1", "true", "yes")
    if int(mlflow.__version__.split(".")[0]) >= 3 and not allowed:
        raise UsageError(f"--log-uri {uri!r} is a folder (MLflow's file store), which MLflow {mlflow.__version__} refuses; "
                         "use a database such as sqlite:///mlflow.db, or set MLFLOW_ALLOW_FILE_STORE=true.")


def artifact_location(uri: str) -> str | None:
    """For a SQLite store, the ``mlruns`` folder beside the database file, so a run's artifacts
    stay with its database (MLflow's own default is ``./mlruns`` of the working folder, wherever
    the database is); None for other stores (theirs decide)."""
    parsed = urlparse(uri)
    if parsed.scheme.split("+")[0] != "sqlite" or parsed.path in ("", "/", "/:memory:"):
        return None
    database = Path(parsed.path[1:])  # sqlite:///relative.db, sqlite:////absolute.db
    return (database.expanduser().absolute().parent / "mlruns").as_uri()


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """MLflow's own log lines kept off the run's output: its notes ("Creating initial MLflow
    database tables...") and its error tracebacks (a failure reaches cnnkit as an exception,
    which reports it in one line and switches the callback off)."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def now_ms() -> int:
    return int(time.time() * 1000)


def epoch_metrics(row: Row, timestamp: int) -> list[Metric]:
    step = int(row["epoch"])
    return [Metric(name, float(row[column]), timestamp, step) for column, name in METRIC_NAMES.items() if column in row]


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class MLflowCallback(Callback):
    """Logs one run to MLflow; see the module's docstring for what goes where."""

    def __init__(self, options: CallbackOptions):
        self.options = options
        self.tracking_uri = options.log_uri or mlflow.get_tracking_uri()
        check_uri(self.tracking_uri)
        if needs_database(self.tracking_uri):  # missing: the pip line, now rather than after the run is built
            import alembic  # noqa: F401
            import sqlalchemy  # noqa: F401
        self.client: MlflowClient | None = None
        self.unsent: list[Metric] = []
        """Epoch metrics not yet sent (see :meth:`epoch_ended`)."""
        self.sent_at = 0.0
        self.run_id = ""

    def run_started(self, event: RunStarted) -> None:
        with quiet_mlflow():
            self.start(event)

    def start(self, event: RunStarted) -> None:
        client = MlflowClient(tracking_uri=self.tracking_uri)
        experiment_id = self.experiment_id(client, self.tracking_uri)
        run_dir = str(event.run_dir.resolve())
        found = find_run(client, experiment_id, run_dir) if event.history or self.options.resumed else None
        if found is None and event.history:
            warn(f"MLflow at {without_password(self.tracking_uri)} has no run of {run_dir} (was it logged from another "
                 "folder, or to another --log-uri?); a new MLflow run gets the whole history.")
        if found is None:
            tags = {RUN_DIR_TAG: run_dir, "cnnkit.model": event.model, "cnnkit.data": str(event.options.get("data", "")),
                    "cnnkit.version": __version__}
            self.run_id = client.create_run(experiment_id, run_name=event.run_name, tags=tags).info.run_id
            logged: dict[str, str] = {}
        else:
            self.run_id = found.info.run_id
            client.update_run(self.run_id, status="RUNNING")
            logged = found.data.params
        self.client = client
        params = [Param(key, str(value)[:MAX_PARAM]) for key, value in run_parameters(event).items() if key not in logged]
        for part in chunks(params, PARAMS_PER_CALL):
            client.log_batch(self.run_id, params=part)
        self.log_metrics(self.missing_epochs(event.history) if found is not None else list(event.history))

    @staticmethod
    def experiment_id(client: MlflowClient, uri: str) -> str:
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        try:
            return str(client.create_experiment(name, artifact_location=artifact_location(uri)))
        except MlflowException:  # made meanwhile by another run
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return str(experiment.experiment_id)

    def missing_epochs(self, history: Sequence[Row]) -> list[Row]:
        """The rows of ``history`` whose epoch is missing from the run's metric history, each
        row holding only the metrics missing at its step."""
        assert self.client is not None
        logged = {name: {metric.step for metric in self.client.get_metric_history(self.run_id, name)}
                  for name in METRIC_NAMES.values()}
        missing: list[Row] = []
        for row in history:
            step = int(row["epoch"])
            absent = {column: value for column, value in row.items()
                      if column in METRIC_NAMES and step not in logged[METRIC_NAMES[column]]}
            if absent:
                missing.append({"epoch": step, **absent})
        return missing

    def log_metrics(self, rows: Sequence[Row]) -> None:
        assert self.client is not None
        timestamp = now_ms()
        metrics = [metric for row in rows for metric in epoch_metrics(row, timestamp)]
        for part in chunks(metrics, METRICS_PER_CALL):
            self.client.log_batch(self.run_id, metrics=part)

    def epoch_ended(self, event: EpochEnded) -> None:
        """The epoch's metrics (stamped now), sent with those of the epochs before once
        ``SEND_EVERY`` seconds have passed since the last sending: one database write costs a few
        milliseconds, several per cent of a short epoch such as the default run's, and grouping
        keeps it under 1%. A long epoch is sent as it ends. ``run_ended`` sends the rest; rows a
        ``kill -9`` leaves unsent are sent on resume, from the history."""
        self.unsent += epoch_metrics(event.metrics, now_ms())
        if time.monotonic() - self.sent_at >= SEND_EVERY:
            with quiet_mlflow():
                self.send()

    def send(self) -> None:
        assert self.client is not None
        for part in chunks(self.unsent, METRICS_PER_CALL):
            self.client.log_batch(self.run_id, metrics=part)
        self.unsent, self.sent_at = [], time.monotonic()

    def run_ended(self, event: RunEnded) -> None:
        with quiet_mlflow():
            self.end(event)

    def end(self, event: RunEnded) -> None:
        client = self.client
        if client is None:
            return
        self.send()
        timestamp, step = now_ms(), event.epochs_done
        summary: dict[str, float] = {}
        if event.status in ("finished", "stopped early"):
            if event.best_epoch:
                summary["best_epoch"] = event.best_epoch
                summary.update({f"best_{key}": float(value) for key, value in event.best.items()})
            summary.update({f"test_{key}": float(value) for key, value in (event.test or {}).items()})
        tags = [RunTag("cnnkit.status", event.status)]
        if event.error:
            tags.append(RunTag("cnnkit.error", event.error[:MAX_TAG]))
        client.log_batch(self.run_id, metrics=[Metric(key, value, timestamp, step) for key, value in summary.items()], tags=tags)
        self.log_files(client, event)
        client.set_terminated(self.run_id, status=STATUS[event.status])
        self.client = None

    def log_files(self, client: MlflowClient, event: RunEnded) -> None:
        for name, path in event.files.items():
            if name != "last.pt" and path.is_file():
                client.log_artifact(self.run_id, str(path))
        confusion = confusion_png(event)
        if confusion is not None:
            with tempfile.TemporaryDirectory() as folder:
                picture = Path(folder) / "confusion.png"
                picture.write_bytes(confusion)
                client.log_artifact(self.run_id, str(picture))


def find_run(client: MlflowClient, experiment_id: str, run_dir: str) -> Run | None:
    """The newest active run of the experiment tagged with ``run_dir``, or None."""
    tag = f"tags.`{RUN_DIR_TAG}`"
    quote = next((mark for mark in ("'", '"') if mark not in run_dir), "")
    if quote:
        condition = f"{tag} = {quote}{run_dir}{quote}"
    else:  # both quotes in the path: match any character there, then compare exactly
        pattern = "".join("_" if char in "'\"\\%" else char for char in run_dir)
        condition = f"{tag} LIKE '{pattern}'"
    runs = client.search_runs([experiment_id], filter_string=condition, order_by=["attributes.start_time DESC"], max_results=100)
    return next((run for run in runs if run.data.tags.get(RUN_DIR_TAG) == run_dir), None)
