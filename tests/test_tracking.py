"""The built-in trackers (--log tensorboard, --log mlflow), read back with each library's own
reader: TensorBoard's EventAccumulator and MLflow's MlflowClient on a SQLite URI.

The event-level tests drive a callback with the contract's events as the run's dispatcher sends
them; the end-to-end ones train tiny runs through the CLI."""

from __future__ import annotations

import io
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.contracts._callbacks import BestChanged, CallbackOptions, EpochEnded, RunEnded, RunStarted

OPTIONS = {"model": "tiny", "data": "shapes", "lr": 0.01, "epochs": 3, "augment": "", "init_bias": None, "pretrained": True}
CLASSES = ("dark", "light")
CONFUSION = ((3, 1), (0, 4))


def row(epoch: int) -> dict[str, float]:
    """A metrics.csv row whose every value tells its epoch and column apart."""
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "train_acc": 0.5 + epoch / 100, "val_loss": 1.5 / epoch,
            "val_acc": 0.4 + epoch / 100, "lr": 0.01 / epoch, "seconds": 2.0 + epoch}


def started(run_dir: Path, done: int = 0, options: dict | None = None) -> RunStarted:
    return RunStarted(run_dir=run_dir, run_name=run_dir.name, options=options or OPTIONS, model="tiny", parameters=1234,
                      trainable_parameters=1000, classes=CLASSES, data_sizes={"train": 12, "val": 4, "test": 8}, epochs=3,
                      history=tuple(row(e) for e in range(1, done + 1)))


def epoch(callback, number: int, run_dir: Path) -> None:
    callback.epoch_ended(EpochEnded(epoch=number, metrics=row(number), lr=row(number)["lr"], seconds=row(number)["seconds"]))
    callback.best_changed(BestChanged(epoch=number, metrics=row(number), path=run_dir / "best.pt"))


def ended(run_dir: Path, status: str, done: int, with_test: bool = True) -> RunEnded:
    files = {name: run_dir / name for name in ("config.json", "metrics.csv", "last.pt", "best.pt", "curves.png")
             if (run_dir / name).is_file()}
    test = {"loss": 0.25, "acc": 0.875} if with_test else None
    best = {"val_loss": row(done)["val_loss"], "val_acc": row(done)["val_acc"]} if done else {}
    return RunEnded(status=status, epochs_done=done, best_epoch=done, best=best, test=test, confusion=CONFUSION if with_test else None, classes=CLASSES,
                    history=tuple(row(e) for e in range(1, done + 1)), files=files)


def run_directory(tmp_path: Path, name: str = "run") -> Path:
    """A run directory with the files a run writes (small stand-ins), ``curves.png`` a 30x20 picture."""
    run_dir = tmp_path / name
    run_dir.mkdir(parents=True)
    for file in ("config.json", "metrics.csv", "last.pt", "best.pt"):
        (run_dir / file).write_text(file)
    Image.new("RGB", (30, 20), (200, 10, 10)).save(run_dir / "curves.png")
    return run_dir


def next_second() -> None:
    """TensorBoard orders event files by their names, which start with the second they were made:
    a resume in the same process a moment later must get a later second, as a real one does."""
    time.sleep(1.02 - time.time() % 1)


# --- TensorBoard -------------------------------------------------------------------------------

def tensorboard_run(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def scalar_steps(accumulator, tag: str) -> list[tuple[int, float]]:
    return [(event.step, pytest.approx(event.value)) for event in accumulator.Scalars(tag)]


def logged_hparams(accumulator) -> dict[str, object]:
    from tensorboard.plugins.hparams import metadata

    content = accumulator.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.SESSION_START_INFO_TAG]
    info = metadata.parse_session_start_info_plugin_data(content)
    return {key: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind")) for key, value in info.hparams.items()}


EXPECTED_TAGS = {"loss/train": "train_loss", "loss/val": "val_loss", "accuracy/train": "train_acc",
                 "accuracy/val": "val_acc", "lr": "lr", "epoch_seconds": "seconds"}


def test_tensorboard_run_holds_every_epoch_hparams_and_figures_in_one_folder(tmp_path):
    from cnnkit.tracking.tensorboard import TensorBoardCallback

    run_dir = run_directory(tmp_path)
    callback = TensorBoardCallback(CallbackOptions())
    callback.run_started(started(run_dir))
    for number in (1, 2):
        epoch(callback, number, run_dir)
    callback.run_ended(ended(run_dir, "finished", 2))

    folder = run_dir / "tensorboard"
    assert [path for path in folder.iterdir() if path.is_dir()] == [], "hparams go into the same folder: no second run"
    board = tensorboard_run(folder)
    for tag, column in EXPECTED_TAGS.items():
        assert scalar_steps(board, tag) == [(1, row(1)[column]), (2, row(2)[column])], tag
    assert scalar_steps(board, "best/val_loss") == [(2, row(2)["val_loss"])]
    assert scalar_steps(board, "best/epoch") == [(2, 2)]
    assert scalar_steps(board, "accuracy/test") == [(2, 0.875)] and scalar_steps(board, "loss/test") == [(2, 0.25)]
    hparams = logged_hparams(board)
    assert hparams["data"] == "shapes" and hparams["lr"] == pytest.approx(0.01) and hparams["epochs"] == 3
    assert hparams["parameters"] == 1234 and hparams["classes"] == 2 and hparams["test_images"] == 8
    assert "init_bias" not in hparams, "None is left out, as add_hparams does"
    curves, confusion = board.Images("figures/learning_curves"), board.Images("figures/confusion_matrix")
    assert [(image.step, image.width, image.height) for image in curves] == [(2, 30, 20)], "curves.png as the run wrote it"
    assert np.asarray(Image.open(io.BytesIO(curves[0].encoded_image_string)))[5, 5].tolist() == [200, 10, 10]
    assert len(confusion) == 1 and confusion[0].step == 2 and confusion[0].width > 100


def test_tensorboard_draws_the_curves_when_the_run_wrote_none_and_skips_what_a_run_lacks(tmp_path):
    from cnnkit.tracking.tensorboard import TensorBoardCallback

    run_dir = tmp_path / "bare"
    run_dir.mkdir()
    callback = TensorBoardCallback(CallbackOptions())
    callback.run_started(started(run_dir))
    epoch(callback, 1, run_dir)
    callback.run_ended(ended(run_dir, "interrupted", 1, with_test=False))
    board = tensorboard_run(run_dir / "tensorboard")
    assert [image.step for image in board.Images("figures/learning_curves")] == [1]
    assert board.Images("figures/learning_curves")[0].width == 1000, "engine.plots' 10x4 inch figure at 100 dpi"
    assert "figures/confusion_matrix" not in board.Tags()["images"] and "accuracy/test" not in board.Tags()["scalars"]


def test_tensorboard_interrupted_and_resumed_shows_every_epoch_once(tmp_path):
    from cnnkit.tracking.tensorboard import TensorBoardCallback

    run_dir = run_directory(tmp_path)
    first = TensorBoardCallback(CallbackOptions())
    first.run_started(started(run_dir))
    epoch(first, 1, run_dir)
    first.run_ended(ended(run_dir, "interrupted", 1, with_test=False))
    next_second()
    second = TensorBoardCallback(CallbackOptions(resumed=True))
    second.run_started(started(run_dir, done=1))
    for number in (2, 3):
        epoch(second, number, run_dir)
    second.run_ended(ended(run_dir, "finished", 3))

    board = tensorboard_run(run_dir / "tensorboard")
    for tag, column in EXPECTED_TAGS.items():
        assert scalar_steps(board, tag) == [(e, row(e)[column]) for e in (1, 2, 3)], tag
    assert scalar_steps(board, "best/epoch") == [(3, 3)], "the interrupted attempt's end is dropped"
    assert [image.step for image in board.Images("figures/learning_curves")] == [3]
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 2
    assert logged_hparams(board)["epochs"] == 3


def test_tensorboard_logs_an_epoch_saved_by_a_process_that_died_before_telling(tmp_path):
    """The first process saved epoch 2 in last.pt and died before epoch_ended reached the callback:
    the resumed run's history holds epoch 2, so it is logged then, once."""
    from cnnkit.tracking.tensorboard import TensorBoardCallback

    run_dir = run_directory(tmp_path)
    first = TensorBoardCallback(CallbackOptions())
    first.run_started(started(run_dir))
    epoch(first, 1, run_dir)
    assert scalar_steps(tensorboard_run(run_dir / "tensorboard"), "loss/val") == [(1, row(1)["val_loss"])], "flushed per epoch"
    next_second()
    second = TensorBoardCallback(CallbackOptions(resumed=True))
    second.run_started(started(run_dir, done=2))
    epoch(second, 3, run_dir)
    second.run_ended(ended(run_dir, "finished", 3))
    assert first.writer is not None
    first.writer.close()  # what the dead process left behind: events up to epoch 1, never closed

    board = tensorboard_run(run_dir / "tensorboard")
    for tag, column in EXPECTED_TAGS.items():
        assert scalar_steps(board, tag) == [(e, row(e)[column]) for e in (1, 2, 3)], tag


def test_tensorboard_added_on_resume_logs_the_whole_history_and_the_hparams(tmp_path):
    from cnnkit.tracking.tensorboard import TensorBoardCallback

    run_dir = run_directory(tmp_path)
    callback = TensorBoardCallback(CallbackOptions(resumed=True))
    callback.run_started(started(run_dir, done=2))
    callback.run_ended(ended(run_dir, "finished", 2))
    board = tensorboard_run(run_dir / "tensorboard")
    assert [step for step, _ in scalar_steps(board, "accuracy/val")] == [1, 2]
    assert logged_hparams(board)["model"] == "tiny"


# --- MLflow ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def empty_database(tmp_path_factory) -> Path:
    """An MLflow SQLite database with its tables made (about 2 s), copied by each test."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracking_uri(empty_database, tmp_path, monkeypatch) -> str:
    """A fresh SQLite tracking URI; the working folder is tmp_path, where MLflow puts artifacts."""
    shutil.copy(empty_database, tmp_path / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def mlflow_runs(uri: str, experiment: str = "cnnkit"):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r}"
    return client, client.search_runs([found.experiment_id])


def metric_steps(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((metric.step, pytest.approx(metric.value)) for metric in client.get_metric_history(run_id, key))


def artifacts(client, run_id: str) -> set[str]:
    return {info.path for info in client.list_artifacts(run_id)}


EXPECTED_METRICS = {"train_loss": "train_loss", "train_acc": "train_acc", "val_loss": "val_loss", "val_acc": "val_acc",
                    "lr": "lr", "epoch_seconds": "seconds"}


def test_mlflow_run_holds_params_every_epoch_the_files_and_its_status(tmp_path, tracking_uri):
    from cnnkit.tracking.mlflow import MLflowCallback

    run_dir = run_directory(tmp_path)
    callback = MLflowCallback(CallbackOptions(log_uri=tracking_uri))
    callback.run_started(started(run_dir))
    for number in (1, 2):
        epoch(callback, number, run_dir)
    callback.run_ended(ended(run_dir, "stopped early", 2))

    client, runs = mlflow_runs(tracking_uri)
    assert len(runs) == 1
    run = runs[0]
    assert (run.info.status, run.info.run_name) == ("FINISHED", "run")
    params = run.data.params
    assert {key: params[key] for key in OPTIONS} == {key: str(value) for key, value in OPTIONS.items()}
    assert (params["parameters"], params["trainable_parameters"], params["classes"]) == ("1234", "1000", "2")
    assert (params["train_images"], params["val_images"], params["test_images"]) == ("12", "4", "8")
    tags = run.data.tags
    assert tags["cnnkit.run_dir"] == str(run_dir.resolve()) and tags["cnnkit.status"] == "stopped early"
    assert (tags["cnnkit.model"], tags["cnnkit.data"]) == ("tiny", "shapes") and tags["cnnkit.version"]
    for key, column in EXPECTED_METRICS.items():
        assert metric_steps(client, run.info.run_id, key) == [(1, row(1)[column]), (2, row(2)[column])], key
    final = run.data.metrics
    assert (final["best_epoch"], final["test_acc"], final["test_loss"]) == (2, 0.875, 0.25)
    assert final["best_val_loss"] == pytest.approx(row(2)["val_loss"])
    assert artifacts(client, run.info.run_id) == {"config.json", "metrics.csv", "curves.png", "best.pt", "confusion.png"}
    assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(tmp_path / "mlruns"), "beside the database"
    best = Path(client.download_artifacts(run.info.run_id, "best.pt", str(tmp_path / "download")))
    assert best.read_text() == "best.pt"


def test_mlflow_sends_quick_epochs_together_and_the_rest_at_the_end(tmp_path, tracking_uri, monkeypatch):
    """Epochs shorter than SEND_EVERY are grouped (one database write for several); the first is
    sent at once, a long gap sends at the next epoch, and run_ended sends what is left."""
    from cnnkit.tracking import mlflow as tracker

    clock = [1000.0]
    monkeypatch.setattr(tracker.time, "monotonic", lambda: clock[0])
    run_dir = run_directory(tmp_path)
    callback = tracker.MLflowCallback(CallbackOptions(log_uri=tracking_uri))
    callback.run_started(started(run_dir))
    client, [run] = mlflow_runs(tracking_uri)
    sent = lambda: [step for step, _ in metric_steps(client, run.info.run_id, "val_loss")]  # noqa: E731
    epoch(callback, 1, run_dir)
    assert sent() == [1], "the first epoch is sent as it ends"
    clock[0] += tracker.SEND_EVERY / 4
    epoch(callback, 2, run_dir)
    assert sent() == [1], "a quick epoch waits for the next sending"
    clock[0] += tracker.SEND_EVERY
    epoch(callback, 3, run_dir)
    assert sent() == [1, 2, 3]
    clock[0] += tracker.SEND_EVERY / 4
    epoch(callback, 4, run_dir)
    callback.run_ended(ended(run_dir, "finished", 4))
    assert sent() == [1, 2, 3, 4]


def test_mlflow_interrupted_and_resumed_continues_the_same_run_with_every_epoch_once(tmp_path, tracking_uri):
    from cnnkit.tracking.mlflow import MLflowCallback

    run_dir = run_directory(tmp_path)
    first = MLflowCallback(CallbackOptions(log_uri=tracking_uri))
    first.run_started(started(run_dir, options={**OPTIONS, "epochs": 2}))
    epoch(first, 1, run_dir)
    first.run_ended(ended(run_dir, "interrupted", 1, with_test=False))
    client, runs = mlflow_runs(tracking_uri)
    assert [(run.info.status, run.data.tags["cnnkit.status"]) for run in runs] == [("KILLED", "interrupted")]
    assert "best_epoch" not in runs[0].data.metrics, "summary metrics are for a run that finished"

    second = MLflowCallback(CallbackOptions(log_uri=tracking_uri, resumed=True))
    second.run_started(started(run_dir, done=1, options={**OPTIONS, "epochs": 3, "patience": 9}))
    assert client.get_run(runs[0].info.run_id).info.status == "RUNNING"
    for number in (2, 3):
        epoch(second, number, run_dir)
    second.run_ended(ended(run_dir, "finished", 3))

    client, runs = mlflow_runs(tracking_uri)
    assert len(runs) == 1, "the resume continues the same MLflow run"
    run = runs[0]
    assert (run.info.status, run.data.tags["cnnkit.status"]) == ("FINISHED", "finished")
    assert run.data.params["epochs"] == "2", "MLflow keeps a param's first value"
    assert run.data.params["patience"] == "9", "params new on resume are added"
    for key, column in EXPECTED_METRICS.items():
        assert metric_steps(client, run.info.run_id, key) == [(e, row(e)[column]) for e in (1, 2, 3)], key


def test_mlflow_logs_an_epoch_saved_by_a_process_that_died_before_telling(tmp_path, tracking_uri):
    from cnnkit.tracking.mlflow import MLflowCallback

    run_dir = run_directory(tmp_path)
    first = MLflowCallback(CallbackOptions(log_uri=tracking_uri))
    first.run_started(started(run_dir))
    epoch(first, 1, run_dir)  # epoch 2 reaches last.pt, then the process dies: no epoch_ended, no run_ended
    second = MLflowCallback(CallbackOptions(log_uri=tracking_uri, resumed=True))
    second.run_started(started(run_dir, done=2))
    epoch(second, 3, run_dir)
    second.run_ended(ended(run_dir, "finished", 3))

    client, runs = mlflow_runs(tracking_uri)
    assert len(runs) == 1
    for key, column in EXPECTED_METRICS.items():
        assert metric_steps(client, runs[0].info.run_id, key) == [(e, row(e)[column]) for e in (1, 2, 3)], key


def test_mlflow_resume_finds_its_run_by_directory_even_with_both_quotes_in_the_path(tmp_path, tracking_uri, monkeypatch):
    from cnnkit.tracking.mlflow import MLflowCallback

    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "quotes")
    odd = run_directory(tmp_path, "it's \"odd\" 100%")
    near = run_directory(tmp_path, "it_s \"odd\" 100%")  # the same but for one character
    for run_dir in (near, odd):
        callback = MLflowCallback(CallbackOptions(log_uri=tracking_uri))
        callback.run_started(started(run_dir))
        epoch(callback, 1, run_dir)
        callback.run_ended(ended(run_dir, "interrupted", 1, with_test=False))
    resumed = MLflowCallback(CallbackOptions(log_uri=tracking_uri, resumed=True))
    resumed.run_started(started(odd, done=1))
    resumed.run_ended(ended(odd, "finished", 1))
    client, runs = mlflow_runs(tracking_uri, "quotes")
    assert sorted((run.info.run_name, run.info.status) for run in runs) == [
        ("it's \"odd\" 100%", "FINISHED"), ("it_s \"odd\" 100%", "KILLED")]


def test_mlflow_resume_without_its_run_starts_one_with_the_whole_history(tmp_path, tracking_uri, capsys):
    from dataclasses import replace

    from cnnkit.tracking.mlflow import MLflowCallback

    run_dir = run_directory(tmp_path)
    callback = MLflowCallback(CallbackOptions(log_uri=tracking_uri, resumed=True))
    callback.run_started(started(run_dir, done=2))
    assert capsys.readouterr().err.strip() == (
        f"cnnkit: warning: MLflow at {tracking_uri} has no run of {run_dir.resolve()} (was it logged from another folder, "
        "or to another --log-uri?); a new MLflow run gets the whole history.")
    callback.run_ended(replace(ended(run_dir, "failed", 2, with_test=False), error="CUDA out of memory"))
    client, runs = mlflow_runs(tracking_uri)
    assert [(run.info.status, run.data.tags["cnnkit.status"], run.data.tags["cnnkit.error"]) for run in runs] == [
        ("FAILED", "failed", "CUDA out of memory")]
    assert [step for step, _ in metric_steps(client, runs[0].info.run_id, "val_acc")] == [1, 2]


def test_mlflow_resume_continues_the_newest_active_run_of_its_directory(tmp_path, tracking_uri):
    """A directory made again under the same name has older runs tagged with it: the newest one
    is continued, and one deleted in MLflow is not."""
    from cnnkit.tracking.mlflow import MLflowCallback

    run_dir = run_directory(tmp_path)
    ids = []
    for _ in range(2):
        callback = MLflowCallback(CallbackOptions(log_uri=tracking_uri))
        callback.run_started(started(run_dir))
        callback.run_ended(ended(run_dir, "interrupted", 0, with_test=False))
        ids.append(callback.run_id)
    resumed = MLflowCallback(CallbackOptions(log_uri=tracking_uri, resumed=True))
    resumed.run_started(started(run_dir, done=1))
    assert resumed.run_id == ids[1]
    client = mlflow_runs(tracking_uri)[0]
    client.delete_run(ids[1])
    again = MLflowCallback(CallbackOptions(log_uri=tracking_uri, resumed=True))
    again.run_started(started(run_dir, done=1))
    assert again.run_id == ids[0]


def test_a_password_in_the_tracking_uri_is_not_logged(tmp_path, tracking_uri):
    from cnnkit.tracking.mlflow import MLflowCallback
    from cnnkit.tracking.parameters import without_password

    assert without_password("postgresql+psycopg2://me:s3cr%40t@db:5432/ml") == "postgresql+psycopg2://me:***@db:5432/ml"
    assert without_password("https://:token@host/x") == "https://:***@host/x"
    assert without_password("sqlite:///mlflow.db") == "sqlite:///mlflow.db"
    run_dir = run_directory(tmp_path)
    callback = MLflowCallback(CallbackOptions(log_uri=tracking_uri))
    callback.run_started(started(run_dir, options={**OPTIONS, "log_uri": "http://me:s3cret@host"}))
    assert mlflow_runs(tracking_uri)[1][0].data.params["log_uri"] == "http://me:***@host"


def test_mlflow_default_uri_is_mlflows_and_its_notes_stay_off_the_output(tmp_path, tracking_uri, monkeypatch, capfd):
    """No --log-uri: $MLFLOW_TRACKING_URI, as MLflow itself would use; creating the database's
    tables prints nothing."""
    import mlflow

    from cnnkit.tracking.mlflow import MLflowCallback

    if int(mlflow.__version__.split(".")[0]) >= 3:
        assert MLflowCallback(CallbackOptions()).tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}", "MLflow 3's own default"
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fresh)
    callback = MLflowCallback(CallbackOptions())
    assert callback.tracking_uri == fresh
    run_dir = run_directory(tmp_path)
    callback.run_started(started(run_dir))
    callback.run_ended(ended(run_dir, "failed", 0, with_test=False))
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert [run.info.status for run in mlflow_runs(fresh)[1]] == ["FAILED"]


@pytest.mark.parametrize(("uri", "message"), [
    ("bogus://x", "--log-uri 'bogus://x': MLflow has no tracking store for 'bogus:'; use sqlite:///FILE.db, http(s)://SERVER, "
                  "or a postgresql://, mysql:// or mssql:// database."),
    ("mlflowfolder", "--log-uri 'mlflowfolder' is a folder (MLflow's file store), which MLflow {version} refuses; use a "
                     "database such as sqlite:///mlflow.db, or set MLFLOW_ALLOW_FILE_STORE=true."),
    ("file:///tmp/store", "--log-uri 'file:///tmp/store' is a folder (MLflow's file store), which MLflow {version} refuses; "
                          "use a database such as sqlite:///mlflow.db, or set MLFLOW_ALLOW_FILE_STORE=true."),
])
def test_a_tracking_uri_mlflow_cannot_use_is_refused_before_the_run(uri, message, monkeypatch):
    import mlflow

    from cnnkit.errors import UsageError
    from cnnkit.tracking.mlflow import MLflowCallback

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    if int(mlflow.__version__.split(".")[0]) < 3 and "folder" in message:
        pytest.skip("MLflow 2 keeps file stores")
    with pytest.raises(UsageError) as refused:
        MLflowCallback(CallbackOptions(log_uri=uri))
    assert str(refused.value) == message.format(version=mlflow.__version__)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    if "folder" in message:
        MLflowCallback(CallbackOptions(log_uri=uri))  # MLflow's own switch lets it through


def test_artifacts_of_a_sqlite_store_go_beside_the_database(tmp_path):
    from cnnkit.tracking.mlflow import MLflowCallback, artifact_location

    database = tmp_path / "elsewhere" / "m.db"
    database.parent.mkdir()
    assert artifact_location(f"sqlite:///{database}") == (database.parent / "mlruns").as_uri()
    assert artifact_location("sqlite:///m.db") == (Path.cwd() / "mlruns").as_uri(), "relative: as MLflow's own ./mlruns"
    assert artifact_location("http://server:5000") is None
    run_dir = run_directory(tmp_path)
    callback = MLflowCallback(CallbackOptions(log_uri=f"sqlite:///{database}"))
    callback.run_started(started(run_dir))
    callback.run_ended(ended(run_dir, "finished", 0))
    client, [run] = mlflow_runs(f"sqlite:///{database}")
    assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(database.parent / "mlruns")
    assert (database.parent / "mlruns").is_dir()


def test_mlflow_without_its_packages_fails_to_import_or_to_make(monkeypatch):
    """The dispatcher names the extra when importing or making the callback raises ImportError."""
    import importlib

    import cnnkit.tracking.mlflow as module

    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    for uri in ("sqlite:///x.db", "postgresql+psycopg2://u@host/db"):
        with pytest.raises(ImportError):
            module.MLflowCallback(CallbackOptions(log_uri=uri))
    assert module.MLflowCallback(CallbackOptions(log_uri="http://localhost:5000")).tracking_uri == "http://localhost:5000"
    monkeypatch.delitem(sys.modules, "cnnkit.tracking.mlflow")
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ImportError):
        importlib.import_module("cnnkit.tracking.mlflow")


def test_tensorboard_without_its_package_fails_to_import(monkeypatch):
    import importlib

    import cnnkit.tracking.tensorboard  # noqa: F401

    monkeypatch.delitem(sys.modules, "cnnkit.tracking.tensorboard")
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ImportError) as missing:
        importlib.import_module("cnnkit.tracking.tensorboard")
    assert missing.value.name == "tensorboard"


# --- Through the CLI ---------------------------------------------------------------------------

def metrics_csv(run_dir: Path) -> list[dict[str, float]]:
    import csv

    with open(run_dir / "metrics.csv", newline="") as f:
        return [{key: float(value) for key, value in line.items()} for line in csv.DictReader(f)]


def assert_both_trackers_hold(run_dir: Path, uri: str) -> str:
    """Every epoch of metrics.csv once, with its values, in the run's event files and its MLflow
    run (returned: the MLflow run's id)."""
    rows = metrics_csv(run_dir)
    board = tensorboard_run(run_dir / "tensorboard")
    client, runs = mlflow_runs(uri)
    assert [run.data.tags["cnnkit.run_dir"] for run in runs] == [str(run_dir.resolve())], "one MLflow run for the run"
    for tag, column in EXPECTED_TAGS.items():
        assert scalar_steps(board, tag) == [(int(line["epoch"]), line[column]) for line in rows], tag
    for key, column in EXPECTED_METRICS.items():
        assert metric_steps(client, runs[0].info.run_id, key) == [(int(line["epoch"]), line[column]) for line in rows], key
    return str(runs[0].info.run_id)


@pytest.fixture
def shapes(tmp_path) -> Path:
    from tests.test_runs import write_shapes

    write_shapes(tmp_path / "shapes")
    return tmp_path / "shapes"


@pytest.mark.slow
def test_cli_run_logs_to_both_trackers(run_cli, tmp_path, shapes, tracking_uri):
    result = run_cli("train", "--data", str(shapes), "--out", str(tmp_path / "runs"), "--name", "both", "--epochs", "2",
                     "--patience", "0", "--quiet", "--log", "tensorboard,mlflow", "--log-uri", tracking_uri)
    assert result.code == 0, result.err
    assert "mlflow" not in result.err.lower() and len(result.out.strip().splitlines()) == 1, "--quiet stays quiet"
    run_dir = tmp_path / "runs" / "both"
    run_id = assert_both_trackers_hold(run_dir, tracking_uri)
    client, run = mlflow_runs(tracking_uri)[0], mlflow_runs(tracking_uri)[1][0]
    assert run.info.status == "FINISHED" and run.data.params["log"] == "tensorboard,mlflow"
    assert artifacts(client, run_id) == {"config.json", "metrics.csv", "curves.png", "best.pt", "confusion.png"}
    board = tensorboard_run(run_dir / "tensorboard")
    assert {"figures/learning_curves", "figures/confusion_matrix"} <= set(board.Tags()["images"])
    assert logged_hparams(board)["model"] == "mnist-cnn"


@pytest.mark.slow
def test_cli_interrupted_and_resumed_run_logs_every_epoch_once(run_cli, tmp_path, shapes, tracking_uri, monkeypatch):
    """Ctrl-C right after epoch 2 is saved: epoch 1 was told to the trackers, epoch 2 never was."""
    from tests.test_resume import stop_after

    options = ("--data", str(shapes), "--out", str(tmp_path / "runs"), "--name", "cut", "--epochs", "3", "--patience", "0",
               "--quiet", "--log", "tensorboard,mlflow", "--log-uri", tracking_uri)
    with monkeypatch.context() as patch:
        stop_after(patch, 2)
        assert run_cli("train", *options).code == 130
    run_dir = tmp_path / "runs" / "cut"
    client, runs = mlflow_runs(tracking_uri)
    assert [(run.info.status, sorted(step for step, _ in metric_steps(client, run.info.run_id, "val_loss"))) for run in runs] == [
        ("KILLED", [1])]
    next_second()
    resumed = run_cli("train", "--resume", str(run_dir), "--quiet")
    assert resumed.code == 0, resumed.err
    assert len(metrics_csv(run_dir)) == 3
    assert_both_trackers_hold(run_dir, tracking_uri)
    assert mlflow_runs(tracking_uri)[1][0].info.status == "FINISHED"


def test_cli_names_the_extra_when_a_tracker_package_is_missing(run_cli, tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "cnnkit.tracking.mlflow", raising=False)
    monkeypatch.setitem(sys.modules, "mlflow", None)
    result = run_cli("train", "--out", str(tmp_path), "--epochs", "1", "--log", "mlflow")
    assert result.code == 2
    assert result.err.strip().splitlines()[-1].endswith("pip install 'cnnkit[mlflow]'.")
    assert not list(tmp_path.iterdir()), "refused before any run directory"
