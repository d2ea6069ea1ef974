"""Run callbacks (``--log``, the ``register_callbacks`` hook): what they are told and when, a
failing one switched off, a missing package named, only rank 0 observing, resume logging every
epoch exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from cnnkit import hookimpl
from cnnkit.contracts import Callback, CallbackOptions, prepare_training
from cnnkit.errors import UsageError
from cnnkit.testing import run_cli
from tests.test_resume import metrics_without_seconds, stop_after

OPTIONS = ("--epochs", "2", "--quiet", "--patience", "0")


class Recorder(Callback):
    """Keeps every event it is told, in order, in the class (one list per test)."""

    events: list[tuple[str, object]] = []
    options: list[CallbackOptions] = []

    def __init__(self, options: CallbackOptions):
        Recorder.options.append(options)

    def run_started(self, event):
        Recorder.events.append(("run_started", event))

    def epoch_ended(self, event):
        Recorder.events.append(("epoch_ended", event))

    def best_changed(self, event):
        Recorder.events.append(("best_changed", event))

    def run_ended(self, event):
        Recorder.events.append(("run_ended", event))


class Failing(Callback):
    calls = 0

    def __init__(self, options: CallbackOptions):
        pass

    def epoch_ended(self, event):
        Failing.calls += 1
        raise ConnectionError("tracker unreachable")

    def run_ended(self, event):
        Failing.calls += 1


class Interrupting(Callback):
    """Sends this process Ctrl-C while it is told about epoch 1, as a user pressing it then would."""

    def __init__(self, options: CallbackOptions):
        pass

    def epoch_ended(self, event):
        if event.epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)


def missing_package(options):
    raise ModuleNotFoundError("No module named 'fancytracker'", name="fancytracker")


def not_a_callback(options):
    return object()


class Plugin:
    @hookimpl
    def register_callbacks(self, register):
        register("rec", Recorder, help="records every event")
        register("failing", Failing)
        register("interrupting", Interrupting)
        register("fancy", missing_package, requires="cnnkit-fancy")
        register("nothing", not_a_callback)


@pytest.fixture(autouse=True)
def fresh_records():
    Recorder.events, Recorder.options, Failing.calls = [], [], 0


def train(*args):
    return run_cli("train", *args, plugins=[Plugin()])


def names():
    return [name for name, _ in Recorder.events]


@pytest.mark.slow
def test_a_run_tells_its_callbacks_every_event_in_order_with_what_the_run_wrote(tmp_path):
    result = train(*OPTIONS, "--out", str(tmp_path), "--name", "seen", "--log", "rec", "--log-uri", "somewhere")
    assert result.code == 0, result.err
    run = tmp_path / "seen"
    assert Recorder.options == [CallbackOptions(log_uri="somewhere", resumed=False)]
    started = Recorder.events[0][1]
    assert started.run_dir == run and started.run_name == "seen" and started.history == ()
    assert started.options == json.loads((run / "config.json").read_text())
    assert started.model == "mnist-cnn" and started.epochs == 2 and started.classes == tuple(str(d) for d in range(10))
    assert started.parameters == started.trainable_parameters > 0
    assert started.data_sizes == {"train": 1259, "val": 269, "test": 269}

    epochs = [event for name, event in Recorder.events if name == "epoch_ended"]
    rows = metrics_without_seconds(run)
    assert [event.epoch for event in epochs] == [1, 2]
    for event, row in zip(epochs, rows):
        assert int(row[0]) == event.epoch and event.seconds == event.metrics["seconds"] > 0
        assert [event.metrics[c] for c in ("train_loss", "train_acc", "val_loss", "val_acc", "lr")] == \
            pytest.approx([float(value) for value in row[1:]]) and event.lr == pytest.approx(float(row[5]))
    new_bests = [e.epoch for e in epochs if e.metrics["val_loss"] < min([x.metrics["val_loss"] for x in epochs
                                                                        if x.epoch < e.epoch], default=float("inf"))]
    told = [(name, event.epoch) for name, event in Recorder.events[1:-1]]
    expected = [pair for e in epochs for pair in [("epoch_ended", e.epoch)] + ([("best_changed", e.epoch)] if e.epoch in new_bests else [])]
    assert told == expected, "a new best is told right after its epoch"
    assert all(event.path == run / "best.pt" for name, event in Recorder.events if name == "best_changed")

    assert names()[-1] == "run_ended" and names().count("run_ended") == 1
    ended = Recorder.events[-1][1]
    assert ended.status == "finished" and ended.epochs_done == 2 and ended.error == ""
    assert sorted(ended.files) == ["best.pt", "config.json", "curves.png", "last.pt", "metrics.csv"]
    assert all(path.parent == run for path in ended.files.values())
    confusion = ended.confusion
    assert sum(map(sum, confusion)) == 269, "every test image counted once"
    assert sum(confusion[i][i] for i in range(10)) / 269 == pytest.approx(ended.test["acc"]), "its diagonal is the test accuracy"
    assert ended.classes == started.classes and len(ended.history) == 2


@pytest.mark.slow
def test_a_failing_callback_is_reported_once_and_switched_off_and_the_run_finishes_unharmed(tmp_path):
    result = train(*OPTIONS, "--out", str(tmp_path), "--name", "hurt", "--log", "failing,rec")
    assert result.code == 0, result.err
    warnings = [line for line in result.err.splitlines() if "failed in" in line]
    assert warnings == ["cnnkit: warning: callback 'failing' of plugin 'tests.test_callbacks.Plugin' failed in epoch_ended: ConnectionError: "
                        "tracker unreachable; it is switched off and the run goes on (metrics.csv and the checkpoints "
                        "keep every epoch)."]
    assert Failing.calls == 1, "never called again, not even for run_ended"
    assert names().count("epoch_ended") == 2 and names()[-1] == "run_ended", "the other callback still hears everything"
    assert len(metrics_without_seconds(tmp_path / "hurt")) == 2 and (tmp_path / "hurt" / "best.pt").exists()


@pytest.mark.slow
def test_an_interrupted_and_resumed_run_tells_every_epoch_exactly_once(tmp_path):
    stopped = train("--epochs", "3", "--quiet", "--patience", "0", "--out", str(tmp_path), "--name", "r",
                    "--log", "rec,interrupting")
    assert stopped.code == 130, stopped.err
    first = list(Recorder.events)
    assert [name for name, _ in first] == ["run_started", "epoch_ended", "run_ended"], "Ctrl-C came before best_changed"
    assert first[-1][1].status == "interrupted" and first[-1][1].epochs_done == 1
    assert "failed in" not in stopped.err, "Ctrl-C inside a callback is an interruption, not a callback failure"

    Recorder.events = []
    resumed = run_cli("train", "--resume", str(tmp_path / "r"), "--log", "rec", plugins=[Plugin()])
    assert resumed.code == 0, resumed.err
    assert Recorder.options[-1] == CallbackOptions(resumed=True)
    history = Recorder.events[0][1].history
    told = [event.epoch for _, event in first + Recorder.events if isinstance(getattr(event, "epoch", None), int)
            and _ == "epoch_ended"]
    assert [int(row["epoch"]) for row in history] == [1] and told == [1, 2, 3]
    assert Recorder.events[-1][1].status == "finished"


@pytest.mark.slow
def test_a_run_that_dies_between_last_pt_and_its_callbacks_hands_that_epoch_over_on_resume(tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        stop_after(patch, 1)  # Ctrl-C right after epoch 1 is saved, before the callbacks hear of it
        assert train("--epochs", "2", "--quiet", "--out", str(tmp_path), "--name", "d", "--log", "rec").code == 130
    assert "epoch_ended" not in names() and Recorder.events[-1][1].epochs_done == 1
    Recorder.events = []
    assert run_cli("train", "--resume", str(tmp_path / "d"), plugins=[Plugin()]).code == 0
    assert [int(row["epoch"]) for row in Recorder.events[0][1].history] == [1], "--log is kept by resume, history has epoch 1"
    assert [event.epoch for name, event in Recorder.events if name == "epoch_ended"] == [2]


@pytest.mark.slow
def test_a_failed_run_is_told_so_with_its_error(tmp_path):
    result = train("--epochs", "2", "--quiet", "--lr", "1e30", "--optimizer", "sgd", "--out", str(tmp_path), "--name", "nan",
                   "--log", "rec")
    assert result.code == 1
    ended = Recorder.events[-1][1]
    assert ended.status == "failed" and ended.epochs_done == 0
    assert result.err.strip().splitlines()[-1] == f"Error: {ended.error}"


@pytest.mark.parametrize(("log", "message"), [
    ("rec,tensorbord", "Error: --log: Unknown callback 'tensorbord'. Did you mean 'tensorboard'?"),
    (" , ", "Error: --log ' , ' names no callback; pass names such as tensorboard,mlflow (see 'cnnkit callbacks')."),
    ("fancy", "Error: --log fancy needs a package that is missing (fancytracker is not installed); pip install 'cnnkit-fancy'."),
])
def test_bad_log_names_and_missing_packages_are_usage_errors_before_anything_is_written(tmp_path, log, message):
    result = train(*OPTIONS, "--out", str(tmp_path), "--log", log)
    assert result.code == 2
    assert result.err.strip().splitlines() == [message]
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_a_factory_returning_something_else_is_named(tmp_path):
    result = train(*OPTIONS, "--out", str(tmp_path), "--log", "nothing")
    assert result.code == 1
    assert "callback 'nothing' of plugin 'tests.test_callbacks.Plugin' returned object, which lacks members of cnnkit.contracts.RunCallback" \
        in result.err


def test_a_training_session_has_no_callbacks():
    with pytest.raises(UsageError, match="prepare_training sets log itself"):
        prepare_training(log="tensorboard")


def test_cnnkit_callbacks_lists_the_built_in_trackers():
    listed = run_cli("callbacks", "--json")
    assert listed.code == 0
    entries = {entry["name"]: entry for entry in json.loads(listed.out)}
    assert set(entries) >= {"tensorboard", "mlflow"}
    assert entries["mlflow"]["plugin"] == "builtins.callbacks"


@pytest.mark.slow
def test_only_rank_0_observes_a_ddp_run(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "cnnkit_rec.py").write_text(textwrap.dedent("""
        import json, os
        from cnnkit import hookimpl
        from cnnkit.contracts import Callback

        class Rec(Callback):
            def __init__(self, options):
                self.path = os.environ["REC_FILE"]
            def epoch_ended(self, event):
                with open(self.path, "a") as f:
                    f.write(json.dumps({"rank": os.environ.get("RANK"), "epoch": event.epoch}) + "\\n")

        @hookimpl
        def register_callbacks(register):
            register("rec", Rec)
    """))
    dist = site / "cnnkit_rec-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: cnnkit-rec\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[cnnkit]\nrec = cnnkit_rec\n")
    record = tmp_path / "events.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "cnnkit", "train", "--strategy", "ddp", "--nproc-per-node", "2", "--epochs", "2",
         "--quiet", "--out", str(tmp_path / "runs"), "--log", "rec"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(site), "REC_FILE": str(record)},
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert lines == [{"rank": "0", "epoch": 1}, {"rank": "0", "epoch": 2}]


def test_log_none_names_no_callback_and_a_long_failure_is_quoted_in_one_short_line():
    from cnnkit.recipe.observers import MESSAGE_CHARACTERS, callback_entries, one_line

    assert callback_entries("none") == callback_entries("") == ()
    quoted = one_line("OperationalError: (sqlite3.DatabaseError) file is not a database\n[SQL: SELECT " + "x, " * 200 + "]")
    assert quoted == "OperationalError: (sqlite3.DatabaseError) file is not a database"
    assert len(one_line("E: " + "y" * 500)) == MESSAGE_CHARACTERS and one_line("E: " + "y" * 500).endswith("...")


@pytest.mark.parametrize(("options", "warning"), [
    ({"log_uri": "sqlite:///m.db"}, "cnnkit: warning: --log-uri has no effect without --log (name the tracker, e.g. --log mlflow)."),
    ({"class_weights": "auto", "sampler": "balanced"},
     "cnnkit: warning: --class-weights auto with --sampler balanced corrects the imbalance twice (rare classes are drawn more "
     "often and weigh more), so the model will over-predict them; use one of the two."),
    ({"class_weights": "auto"}, ""),
])
def test_options_that_do_nothing_or_correct_twice_are_said(options, warning, capsys):
    from cnnkit.options import TrainConfig
    from cnnkit.recipe.plan import make_plan

    make_plan(TrainConfig(**options))
    assert capsys.readouterr().err.strip() == warning


def test_a_relative_tracking_uri_is_recorded_absolute_so_a_resume_elsewhere_finds_the_same_store(tmp_path, monkeypatch):
    from cnnkit.options import TrainConfig

    monkeypatch.chdir(tmp_path)
    assert TrainConfig(log_uri="sqlite:///sub/m.db").to_dict()["log_uri"] == f"sqlite:///{tmp_path / 'sub' / 'm.db'}"
    assert TrainConfig(log_uri="logs/run.jsonl").to_dict()["log_uri"] == str(tmp_path / "logs" / "run.jsonl")
    for kept in ("sqlite:////abs/m.db", "http://server:5000", "postgresql://me@host/db", "sqlite:///:memory:", ""):
        assert TrainConfig(log_uri=kept).to_dict()["log_uri"] == kept
