"""--resume continues a stopped run exactly where the uninterrupted run would have gone."""

import json

import pytest
import torch

from cnnkit.engine.checkpoint import load_checkpoint
from cnnkit.recipe import fit as run_module

COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")


def metrics_without_seconds(run_dir):
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    keep = [header.index(c) for c in COLUMNS]
    return [[row.split(",")[i] for i in keep] for row in lines[1:]]


def stop_after(monkeypatch, epochs_done):
    """Make the next run raise Ctrl-C's exception right after epoch ``epochs_done`` is recorded."""
    original = run_module.TrainingRun.record

    def record(self, row):
        original(self, row)
        if row["epoch"] == epochs_done:
            raise KeyboardInterrupt

    monkeypatch.setattr(run_module.TrainingRun, "record", record)


def weights(path):
    return load_checkpoint(path)["state_dict"]


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle"])
@pytest.mark.slow
def test_resumed_run_ends_exactly_like_the_uninterrupted_one(run_cli, tmp_path, monkeypatch, scheduler):
    options = ["--epochs", "4", "--scheduler", scheduler, "--augment", "random-shift,hflip,gaussian-noise",
               "--seed", "3", "--out", str(tmp_path), "--quiet", "--patience", "0"]
    assert run_cli("train", *options, "--name", "whole").code == 0

    with monkeypatch.context() as patch:
        stop_after(patch, 2)
        stopped = run_cli("train", *options, "--name", "part")
    assert stopped.code == 130
    assert "last.pt holds epoch 2" in stopped.err and f"cnnkit train --resume {tmp_path / 'part'}" in stopped.err
    assert load_checkpoint(tmp_path / "part" / "last.pt")["epoch"] == 2

    resumed = run_cli("train", "--resume", str(tmp_path / "part"))
    assert resumed.code == 0, resumed.err
    assert metrics_without_seconds(tmp_path / "part") == metrics_without_seconds(tmp_path / "whole")
    assert len(metrics_without_seconds(tmp_path / "part")) == 4
    for name in ("last.pt", "best.pt"):
        whole, part = weights(tmp_path / "whole" / name), weights(tmp_path / "part" / name)
        assert all(torch.equal(whole[key], part[key]) for key in whole), name
    assert not (tmp_path / "part-2").exists(), "resume continues in the same directory"


@pytest.fixture
def stopped_run(run_cli, tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        stop_after(patch, 1)
        assert run_cli("train", "--epochs", "3", "--out", str(tmp_path), "--name", "r", "--quiet").code == 130
    return tmp_path / "r"


def test_resume_refuses_changed_options_that_shape_training(run_cli, stopped_run):
    result = run_cli("train", "--resume", str(stopped_run), "--batch-size", "32", "--lr", "0.01", "--epochs", "5")
    assert result.code == 2
    assert "--batch-size 64 -> 32" in result.err and "--lr 0.002 -> 0.01" in result.err
    assert "--epochs" not in result.err.split("changed")[1].split("(")[0]
    assert load_checkpoint(stopped_run / "last.pt")["epoch"] == 1, "nothing was changed"


@pytest.mark.slow
def test_resume_allows_more_epochs_and_other_patience(run_cli, stopped_run):
    result = run_cli("train", "--resume", str(stopped_run), "--epochs", "4", "--patience", "9")
    assert result.code == 0, result.err
    assert "schedule now spans the new length and goes on from step" in result.err
    config = json.loads((stopped_run / "config.json").read_text())
    assert (config["epochs"], config["patience"]) == (4, 9)
    assert [row[0] for row in metrics_without_seconds(stopped_run)] == ["1", "2", "3", "4"]
    lrs = [float(row[5]) for row in metrics_without_seconds(stopped_run)]
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] > 0


@pytest.mark.slow
def test_resuming_a_finished_run_scores_it_again_and_says_how_to_continue(run_cli, stopped_run):
    first = run_cli("train", "--resume", str(stopped_run))
    assert first.code == 0
    again = run_cli("train", "--resume", str(stopped_run))
    assert again.code == 0
    assert "already finished 3 of 3 epochs" in again.err and "pass --epochs N with N > 3" in again.err
    assert again.out.splitlines()[-1] == first.out.splitlines()[-1], "same best epoch and test accuracy"
    assert len(metrics_without_seconds(stopped_run)) == 3


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, "does not exist"),
        (lambda p: p.mkdir() or p, "has no config.json"),
    ],
)
def test_resume_of_something_that_is_not_a_run(run_cli, tmp_path, make, message):
    path = make(tmp_path / "nothing")
    result = run_cli("train", "--resume", str(path))
    assert result.code == 2 and message in result.err


def test_resume_refuses_name_and_out_of_another_place(run_cli, stopped_run, tmp_path):
    result = run_cli("train", "--resume", str(stopped_run), "--name", "elsewhere")
    assert result.code == 2 and "drop --name" in result.err


@pytest.mark.slow
def test_resume_accepts_auto_for_what_the_run_resolved(run_cli, stopped_run):
    result = run_cli("train", "--resume", str(stopped_run), "--strategy", "auto", "--precision", "auto",
                     "--out", str(stopped_run.parent) + "/")
    assert result.code == 0, result.err


@pytest.mark.slow
def test_extending_a_finished_cosine_run_goes_on_training_at_the_new_schedules_rate(run_cli, tmp_path):
    import math

    assert run_cli("train", "--epochs", "2", "--out", str(tmp_path), "--name", "f", "--quiet").code == 0
    steps = load_checkpoint(tmp_path / "f" / "last.pt")["scheduler"]["last_epoch"]
    result = run_cli("train", "--resume", str(tmp_path / "f"), "--epochs", "3")
    assert result.code == 0, result.err
    rows = metrics_without_seconds(tmp_path / "f")
    expected = 2e-3 * (1 + math.cos(math.pi * steps / (steps * 3 / 2))) / 2
    assert float(rows[2][5]) == pytest.approx(expected, rel=1e-6), "lr of the 3-epoch cosine at the step reached"
    assert rows[2][1:5] != rows[1][1:5], "epoch 3 trained"


@pytest.mark.slow
def test_resume_with_fewer_epochs_than_done_is_refused(run_cli, stopped_run):
    result = run_cli("train", "--resume", str(stopped_run))
    assert result.code == 0
    fewer = run_cli("train", "--resume", str(stopped_run), "--epochs", "2")
    assert fewer.code == 2 and "has finished 3 epochs; --epochs must be at least 3" in fewer.err
    assert json.loads((stopped_run / "config.json").read_text())["epochs"] == 3, "config.json untouched"


@pytest.mark.slow
def test_a_run_still_training_cannot_be_resumed_twice_but_a_dead_lock_is_taken_over(run_cli, stopped_run):
    import socket
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "cnnkit"])
    try:
        (stopped_run / ".lock").write_text(f"{holder.pid} {socket.gethostname()}\n")
        busy = run_cli("train", "--resume", str(stopped_run))
        assert busy.code == 2 and f"is being trained by process {holder.pid}" in busy.err
        assert load_checkpoint(stopped_run / "last.pt")["epoch"] == 1
    finally:
        holder.kill()
        holder.wait()
    again = run_cli("train", "--resume", str(stopped_run))
    assert again.code == 0, again.err
    assert not (stopped_run / ".lock").exists()


@pytest.mark.slow
def test_a_lock_held_on_another_host_is_refused_with_what_to_do(run_cli, stopped_run):
    (stopped_run / ".lock").write_text("12345 some-other-host\n")
    result = run_cli("train", "--resume", str(stopped_run))
    assert result.code == 2
    assert f"is locked by process 12345 on some-other-host; if no run goes on there, delete '{stopped_run / '.lock'}'" in result.err


@pytest.mark.slow
def test_a_run_resumes_only_on_the_device_type_it_was_trained_on(run_cli, stopped_run):
    from cnnkit.engine.checkpoint import save_checkpoint

    last = load_checkpoint(stopped_run / "last.pt")
    last["config"]["device"] = "cuda:0"
    save_checkpoint(stopped_run / "last.pt", {k: v for k, v in last.items() if k not in ("format", "format_version")})
    result = run_cli("train", "--resume", str(stopped_run), "--device", "cpu")
    assert result.code == 2
    assert "was trained on cuda and this run is on cpu" in result.err and "--device cuda" in result.err


@pytest.mark.slow
def test_an_interrupted_resume_names_the_epoch_last_pt_still_holds(run_cli, stopped_run, monkeypatch):
    from cnnkit.recipe import fit as run_module

    def interrupted_epoch(self, epoch):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module.TrainingRun, "run_epoch", interrupted_epoch)
    result = run_cli("train", "--resume", str(stopped_run))
    assert result.code == 130
    assert "after 1 finished epoch(s); last.pt holds epoch 1." in result.err
