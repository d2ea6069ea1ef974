"""``--log jsonlog``: one strict JSON line per event, in the order cnnkit tells them, matching what
the run wrote (metrics.csv, config.json); a resumed run logs every epoch exactly once, also one
stopped before its callback heard of an epoch and one killed in the middle of a line."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cnnkit_jsonlog
import pytest
from cnnkit_jsonlog.callback import FILE_NAME, JsonLog, chosen_file, new_bests

from cnnkit import hookimpl
from cnnkit.contracts import (
    BestChanged,
    Callback,
    CallbackOptions,
    CallbackRegister,
    EpochEnded,
    RunCallback,
    RunEnded,
    RunStarted,
    UsageError,
)
from cnnkit.testing import CliResult, plugin_host, run_cli, tiny_image_folder


class Interrupting(Callback):
    """Sends this process Ctrl-C while it is told about epoch 1, as a user pressing it then would."""

    def __init__(self, options: CallbackOptions) -> None:
        pass

    def epoch_ended(self, event: EpochEnded) -> None:
        if event.epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)


class Helpers:
    @hookimpl
    def register_callbacks(self, register: CallbackRegister) -> None:
        register("interrupting", Interrupting)


def train(data: Path, out: Path, *args: str) -> CliResult:
    return run_cli("train", "--data", str(data), "--out", str(out), "--quiet", "--patience", "0", *args,
                   plugins=[cnnkit_jsonlog, Helpers()])


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def told(path: Path) -> list[tuple[str, int | None]]:
    """(event, epoch) of every line, in file order."""
    return [(line["event"], line.get("epoch")) for line in lines(path)]


def metrics_rows(run: Path) -> list[dict[str, float]]:
    with (run / "metrics.csv").open() as file:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(file)]


def expected_order(rows: list[dict[str, float]]) -> list[tuple[str, int | None]]:
    """epoch_ended for every epoch, each followed by best_changed when its validation loss is lower
    than every earlier epoch's (computed here from metrics.csv, not by the plugin's code)."""
    order: list[tuple[str, int | None]] = []
    for index, row in enumerate(rows):
        epoch = int(row["epoch"])
        order.append(("epoch_ended", epoch))
        if all(row["val_loss"] < earlier["val_loss"] for earlier in rows[:index]):
            order.append(("best_changed", epoch))
    return order


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_image_folder(tmp_path_factory.mktemp("jsonlog") / "data", classes=2, per_class=8, size=16)


def started(run_dir: Path, history: tuple[dict[str, float], ...] = ()) -> RunStarted:
    return RunStarted(run_dir=run_dir, run_name=run_dir.name, options={"epochs": 3, "out": str(run_dir.parent)},
                      model="tiny", parameters=10, trainable_parameters=8, classes=("a", "b"),
                      data_sizes={"train": 12, "val": 4}, epochs=3, history=history)


def row(epoch: int, val_loss: float) -> dict[str, float]:
    return {"epoch": epoch, "train_loss": 1.0, "train_acc": 0.5, "val_loss": val_loss, "val_acc": 0.75, "lr": 0.1, "seconds": 0.5}


HISTORY = (row(1, 0.5), row(2, 0.7), row(3, 0.4))
"""Three epochs of which 1 and 3 were new bests."""


def test_the_plugin_registers_jsonlog_for_api_1_1_without_importing_torch() -> None:
    entry = plugin_host(cnnkit_jsonlog).registry("callbacks").get("jsonlog")
    assert entry.plugin == "jsonlog" and "events.jsonl" in entry.help
    assert isinstance(entry.create(CallbackOptions()), RunCallback)
    assert cnnkit_jsonlog.CNNKIT_API == ">=1.1,<2"
    code = "import json, sys, cnnkit_jsonlog; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')))"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(imported.stdout) == []


def test_the_installed_plugin_is_listed_by_cnnkit_callbacks(cnnkit: Callable[..., CliResult]) -> None:
    listed = cnnkit("callbacks", "--json")
    assert listed.code == 0, listed.err
    [entry] = [entry for entry in json.loads(listed.out) if entry["name"] == "jsonlog"]
    assert entry["plugin"] == "jsonlog"


@pytest.mark.parametrize(("uri", "expected"), [
    ("", None),
    ("sqlite:///mlflow.db", None),
    ("http://tracker:5000", None),
    ("mlruns", None),
    ("file:///srv/mlruns", None),
    ("file:///srv/logs/all%20runs.jsonl", "/srv/logs/all runs.jsonl"),
    ("file://localhost/srv/all.jsonl", "/srv/all.jsonl"),
    ("/srv/all.jsonl", "/srv/all.jsonl"),
    ("logs/all.jsonl", "CWD/logs/all.jsonl"),
])
def test_log_uri_names_the_file_when_it_is_a_jsonl_path_or_file_uri(uri: str, expected: str | None) -> None:
    chosen = chosen_file(uri)
    assert (None if chosen is None else str(chosen)) == (expected and expected.replace("CWD", os.getcwd()))


ANOTHER_HOST = "--log-uri 'file://tracker/all.jsonl': jsonlog writes a local file, not one on host 'tracker'."


def test_a_log_uri_jsonlog_cannot_write_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as raised:
        chosen_file("file://tracker/all.jsonl")
    assert str(raised.value) == ANOTHER_HOST
    (tmp_path / "all.jsonl").mkdir()
    with pytest.raises(UsageError, match=r"is a folder; jsonlog needs a file ending in .jsonl.$"):
        chosen_file(str(tmp_path / "all.jsonl"))


def test_every_event_is_one_strict_json_line_with_paths_as_text_and_tuples_as_lists(tmp_path: Path) -> None:
    run = tmp_path / "r"
    run.mkdir()
    callback = JsonLog(CallbackOptions())
    before = datetime.now(timezone.utc)
    callback.run_started(started(run))
    callback.epoch_ended(EpochEnded(epoch=1, metrics={**row(1, math.nan), "val_acc": math.inf}, lr=0.1, seconds=0.5))
    callback.best_changed(BestChanged(epoch=1, metrics=row(1, 0.5), path=run / "best.pt"))
    callback.run_ended(RunEnded(status="finished", epochs_done=1, best_epoch=1, best={"val_loss": 0.5}, test={"loss": 0.4, "acc": 1.0},
                                confusion=((2, 0), (1, 3)), classes=("a", "b"), history=(row(1, 0.5),), files={"best.pt": run / "best.pt"}))
    written = (run / FILE_NAME).read_text(encoding="utf-8")
    assert written.endswith("\n") and len(written.splitlines()) == 4
    first, epoch, best, ended = lines(run / FILE_NAME)
    times = [datetime.fromisoformat(line.pop("time")) for line in (first, epoch, best, ended)]
    assert all(before - timedelta(seconds=1) <= t <= datetime.now(timezone.utc) and t.utcoffset() == timedelta(0) for t in times)
    assert first == {"event": "run_started", "run_dir": str(run), "run_name": "r", "options": {"epochs": 3, "out": str(tmp_path)},
                     "model": "tiny", "parameters": 10, "trainable_parameters": 8, "classes": ["a", "b"],
                     "data_sizes": {"train": 12, "val": 4}, "epochs": 3, "history": []}
    assert epoch == {"event": "epoch_ended", "run_dir": str(run), "epoch": 1,
                     "metrics": {**row(1, 0.5), "val_loss": None, "val_acc": None}, "lr": 0.1, "seconds": 0.5}
    assert best == {"event": "best_changed", "run_dir": str(run), "epoch": 1, "metrics": row(1, 0.5), "path": str(run / "best.pt")}
    assert ended == {"event": "run_ended", "run_dir": str(run), "status": "finished", "epochs_done": 1, "best_epoch": 1,
                     "best": {"val_loss": 0.5}, "test": {"loss": 0.4, "acc": 1.0}, "confusion": [[2, 0], [1, 3]], "classes": ["a", "b"],
                     "history": [row(1, 0.5)], "files": {"best.pt": str(run / "best.pt")}, "error": ""}
    assert callback.stream is None, "run_ended closes the file"


def test_a_relative_run_directory_is_written_as_an_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("runs/r").mkdir(parents=True)
    callback = JsonLog(CallbackOptions())
    callback.run_started(started(Path("runs/r")))
    callback.best_changed(BestChanged(epoch=1, metrics=row(1, 0.5), path=Path("runs/r/best.pt")))
    [first, best] = lines(tmp_path / "runs" / "r" / FILE_NAME)
    assert first["run_dir"] == best["run_dir"] == str(tmp_path / "runs" / "r")
    assert best["path"] == str(tmp_path / "runs" / "r" / "best.pt")


def test_new_bests_are_the_epochs_whose_validation_loss_beats_every_earlier_one() -> None:
    assert new_bests(HISTORY) == {1, 3}
    assert new_bests([row(1, math.nan), row(2, 0.9), row(3, 0.9)]) == {2}, "a NaN is never a best, an equal loss is no new best"


@pytest.mark.parametrize(("already", "replayed"), [
    ([("epoch_ended", 1), ("best_changed", 1), ("epoch_ended", 2)], [("epoch_ended", 3), ("best_changed", 3)]),
    ([("epoch_ended", 1), ("best_changed", 1), ("epoch_ended", 2), ("epoch_ended", 3)], [("best_changed", 3)]),
    ([], [("epoch_ended", 1), ("best_changed", 1), ("epoch_ended", 2), ("epoch_ended", 3), ("best_changed", 3)]),
])
def test_resume_writes_each_history_epoch_the_file_lacks_and_cuts_a_partial_last_line(
        tmp_path: Path, already: list[tuple[str, int]], replayed: list[tuple[str, int]]) -> None:
    run = tmp_path / "r"
    run.mkdir()
    # lines from before the run directory was moved: in the run directory's own file every line is the run's
    old = [{"event": name, "time": "t", "run_dir": "/moved/elsewhere", "epoch": epoch} for name, epoch in already]
    text = "".join(json.dumps(line) + "\n" for line in old)
    (run / FILE_NAME).write_text(text + '{"event": "epoch_ended", "ti', encoding="utf-8")  # killed while writing a line
    callback = JsonLog(CallbackOptions(resumed=True))
    callback.run_started(started(run, HISTORY))
    callback.epoch_ended(EpochEnded(epoch=4, metrics=row(4, 0.3), lr=0.1, seconds=0.5))
    assert (run / FILE_NAME).read_text(encoding="utf-8").startswith(text), "what was written stays, the partial line goes"
    new = lines(run / FILE_NAME)[len(old):]
    assert [(line["event"], line.get("epoch")) for line in new] == [("run_started", None), *replayed, ("epoch_ended", 4)]
    assert [line.get("replayed", False) for line in new] == [False] + [True] * len(replayed) + [False]
    by_epoch = {epoch: r for epoch, r in ((int(r["epoch"]), r) for r in HISTORY)}
    for line in new[1:-1]:
        assert line["metrics"] == by_epoch[line["epoch"]] and line["run_dir"] == str(run)
    assert all(line["path"] == str(run / "best.pt") for line in new if line["event"] == "best_changed")


def test_a_whole_last_line_written_without_its_newline_is_kept(tmp_path: Path) -> None:
    shared = tmp_path / "all.jsonl"
    shared.write_text('{"event": "note", "by": "someone else"}', encoding="utf-8")
    JsonLog(CallbackOptions(log_uri=str(shared))).run_started(started(tmp_path / "r"))
    assert told(shared) == [("note", None), ("run_started", None)]


def test_runs_that_share_a_file_are_told_apart_by_their_run_directory(tmp_path: Path) -> None:
    shared = tmp_path / "logs" / "all.jsonl"
    first, second = tmp_path / "a", tmp_path / "b"
    one = JsonLog(CallbackOptions(log_uri=f"file://{shared}"))
    one.run_started(started(first))
    one.epoch_ended(EpochEnded(epoch=1, metrics=row(1, 0.5), lr=0.1, seconds=0.5))
    two = JsonLog(CallbackOptions(log_uri=str(shared), resumed=True))
    two.run_started(started(second, HISTORY[:1]))
    assert told(shared) == [("run_started", None), ("epoch_ended", 1), ("run_started", None), ("epoch_ended", 1), ("best_changed", 1)]
    assert [line["run_dir"] for line in lines(shared)] == [str(first)] * 2 + [str(second)] * 3, "b's epoch 1 is not a's"
    assert not (first / FILE_NAME).exists() and not (second / FILE_NAME).exists()


def test_a_run_logs_every_event_in_order_as_the_run_wrote_it(data: Path, tmp_path: Path) -> None:
    result = train(data, tmp_path, "--epochs", "2", "--name", "seen", "--log", "jsonlog")
    assert result.code == 0, result.err
    run = tmp_path / "seen"
    written, rows = lines(run / FILE_NAME), metrics_rows(run)
    assert [(line["event"], line.get("epoch")) for line in written] == [("run_started", None), *expected_order(rows), ("run_ended", None)]
    assert written[0]["options"] == json.loads((run / "config.json").read_text()) and written[0]["history"] == []
    epochs = [line for line in written if line["event"] == "epoch_ended"]
    assert [line["metrics"] for line in epochs] == [pytest.approx(r) for r in rows]
    assert [line["lr"] for line in epochs] == pytest.approx([r["lr"] for r in rows])
    ended = written[-1]
    assert ended["status"] == "finished" and ended["epochs_done"] == 2 and ended["test"] is None
    assert ended["files"] == {name: str(run / name) for name in ("config.json", "metrics.csv", "last.pt", "best.pt", "curves.png")}
    assert not any("replayed" in line for line in written) and {line["run_dir"] for line in written} == {str(run)}


@pytest.mark.slow
@pytest.mark.parametrize(("order", "shared"), [("jsonlog,interrupting", False), ("interrupting,jsonlog", False),
                                               ("interrupting,jsonlog", True)])
def test_an_interrupted_and_resumed_run_logs_every_epoch_exactly_once(
        data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, order: str, shared: bool) -> None:
    """Ctrl-C in epoch 1's callbacks: after jsonlog wrote epoch 1, or before it heard of it (last.pt
    holds epoch 1 either way); the resumed run also meets a line the first one was killed writing.
    With a ``--log-uri`` file, resume keeps it, and a relative ``--resume`` is the same run."""
    events = tmp_path / "logs" / "all.jsonl" if shared else tmp_path / "r" / FILE_NAME
    stopped = train(data, tmp_path, "--epochs", "3", "--name", "r", "--log", order, *(["--log-uri", str(events)] if shared else []))
    assert stopped.code == 130, stopped.err
    heard = [("epoch_ended", 1)] if order.startswith("jsonlog") else []
    assert told(events) == [("run_started", None), *heard, ("run_ended", None)]
    assert lines(events)[-1]["status"] == "interrupted" and lines(events)[-1]["epochs_done"] == 1
    with events.open("a", encoding="utf-8") as file:
        file.write('{"event": "epoch_ended", "time": "2026-')

    monkeypatch.chdir(tmp_path)
    resumed = run_cli("train", "--resume", "r", plugins=[cnnkit_jsonlog, Helpers()])
    assert resumed.code == 0, resumed.err
    written = lines(events)
    epochs = [(line["event"], line["epoch"]) for line in written if "epoch" in line]
    assert epochs == expected_order(metrics_rows(tmp_path / "r")), "every epoch once, in order, each new best right after it"
    assert [line["event"] for line in written if "epoch" not in line] == ["run_started", "run_ended"] * 2
    second_start = [index for index, line in enumerate(written) if line["event"] == "run_started"][1]
    assert [int(r["epoch"]) for r in written[second_start]["history"]] == [1]
    replayed = [(line["event"], line["epoch"]) for line in written if line.get("replayed")]
    lacked = [("best_changed", 1)] if heard else [("epoch_ended", 1), ("best_changed", 1)]  # epoch 1 is always a new best
    assert replayed == lacked, "only what the file lacked is written again"
    assert written[-1]["status"] == "finished" and written[-1]["epochs_done"] == 3
    assert {line["run_dir"] for line in written} == {str(tmp_path / "r")}
    assert (tmp_path / "r" / FILE_NAME).exists() != shared


def test_log_uri_sends_the_lines_of_every_run_to_one_file(data: Path, tmp_path: Path) -> None:
    shared = tmp_path / "logs" / "all.jsonl"
    for name in ("a", "b"):
        result = train(data, tmp_path / "runs", "--epochs", "1", "--name", name, "--log", "jsonlog", "--log-uri", shared.as_uri())
        assert result.code == 0, result.err
    written = lines(shared)
    assert [(line["event"], Path(line["run_dir"]).name) for line in written] == [
        (event, name) for name in ("a", "b") for event in ("run_started", "epoch_ended", "best_changed", "run_ended")]
    assert not any((tmp_path / "runs" / name / FILE_NAME).exists() for name in ("a", "b"))


def test_a_log_uri_on_another_host_stops_the_run_before_anything_is_written(data: Path, tmp_path: Path) -> None:
    result = train(data, tmp_path / "runs", "--epochs", "1", "--log", "jsonlog", "--log-uri", "file://tracker/all.jsonl")
    assert result.code == 2
    assert result.err.strip().splitlines()[-1] == f"Error: {ANOTHER_HOST}"
    assert not (tmp_path / "runs").exists()
