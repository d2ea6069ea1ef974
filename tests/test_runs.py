"""`cnnkit runs`: a folder of real tiny runs (finished, stopped early, interrupted, failed) beside
copies made into other states by hand (running, damaged, written before failures were recorded)
and foreign entries; every one is listed with the right status, and the command never crashes."""

import contextlib
import csv
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.engine.checkpoint import load_checkpoint
from cnnkit.inference.runs import list_runs
from cnnkit.recipe import fit as fit_module

EXPECTED = {
    "done": "finished", "early": "stopped early", "cut": "interrupted", "nan": "failed",
    "failed-before-records": "interrupted", "remote": "running", "stale-lock": "interrupted",
    "bad-json": "damaged", "no-config": "damaged", "bad-metrics": "damaged", "no-last": "damaged", "bad-best": "damaged",
    "photos": "not a run", "notes.txt": "not a run", "hf-model": "not a run",
}


def write_shapes(root: Path) -> None:
    """Two classes of 8x8 grey squares in train/val/test folders."""
    for split, count in (("train", 6), ("val", 2), ("test", 2)):
        for label, value in (("dark", 20), ("light", 230)):
            (root / split / label).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(np.full((8, 8), value + i, np.uint8)).save(root / split / label / f"{i}.png")


def train(out: Path, name: str, *flags: str, data: Path) -> None:
    from cnnkit.errors import CnnkitError
    from cnnkit.options import TrainConfig
    from cnnkit.recipe.run import train as run_train

    options = {"data": str(data), "out": str(out), "name": name, "quiet": True}
    for flag, value in zip(flags[::2], flags[1::2]):
        options[flag] = type(getattr(TrainConfig(), flag))(value)
    with contextlib.suppress(CnnkitError):  # the failed and the interrupted run end so
        run_train(TrainConfig(**options))


def copy(out: Path, source: str, name: str) -> Path:
    shutil.copytree(out / source, out / name)
    return out / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Four tiny real runs, the rest copies of them put into other states, and foreign entries."""
    tmp = tmp_path_factory.mktemp("runs-table")
    data, out = tmp / "shapes", tmp / "runs"
    write_shapes(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fit_module, "plot_curves", lambda *args, **kwargs: None)  # most of a tiny run's time; not read here
        train(out, "done", "epochs", "2", "patience", "0", data=data)
        train(out, "early", "epochs", "3", "patience", "1", "lr", "1e-30", "optimizer", "sgd", "momentum", "0",
              "scheduler", "none", data=data)  # no step changes the weights: epoch 2 does not improve
        train(out, "nan", "epochs", "2", "optimizer", "sgd", "lr", "1e6", data=data)
        original = fit_module.TrainingRun.record

        def record(self, row):  # Ctrl-C right after epoch 1 is recorded
            original(self, row)
            raise KeyboardInterrupt

        patch.setattr(fit_module.TrainingRun, "record", record)
        train(out, "cut", "epochs", "2", data=data)
    (copy(out, "nan", "failed-before-records") / "status.json").unlink()
    (copy(out, "cut", "remote") / ".lock").write_text("4242 another-host\n")
    (copy(out, "cut", "stale-lock") / ".lock").write_text(f"999999999 {socket.gethostname()}\n")
    (out / "bad-json").mkdir()
    (out / "bad-json" / "config.json").write_text("{")
    (copy(out, "cut", "no-config") / "config.json").unlink()
    (copy(out, "done", "bad-metrics") / "metrics.csv").write_text("epoch,val_acc\n1,high\n")
    (copy(out, "cut", "no-last") / "last.pt").unlink()
    (copy(out, "done", "bad-best") / "best.pt").write_text("not a checkpoint")
    (out / "photos").mkdir()
    (out / "photos" / "cat.png").write_bytes(b"")
    (out / "notes.txt").write_text("runs to compare\n")
    (out / "hf-model").mkdir()
    (out / "hf-model" / "config.json").write_text('{"architectures": ["BertModel"]}')
    (out / ".cache").mkdir()
    return out


def as_json(run_cli, *args):
    result = run_cli("runs", *args, "--json")
    assert result.code == 0, result.err
    return {row["name"]: row for row in json.loads(result.out)}


def test_every_entry_gets_its_status(runs):
    assert {s.name: s.status for s in list_runs(runs)} == EXPECTED, "hidden entries are left out"


def test_the_table_has_a_row_per_entry_and_notes_below(run_cli, runs):
    result = run_cli("runs", str(runs))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["NAME", "MODEL", "DATA", "EPOCHS", "VAL", "ACC", "TEST", "ACC", "TIME", "STATUS"]
    rows = {line.split()[0]: line for line in lines[1:len(EXPECTED) + 1]}
    assert {name: row.endswith(EXPECTED[name]) for name, row in rows.items()} == {name: True for name in EXPECTED}
    assert rows["done"].split()[1:4] == ["mnist-cnn", str(runs.parent / "shapes"), "2/2"]
    assert rows["early"].split()[3] == "2/3" and rows["nan"].split()[3] == "1/2" and rows["cut"].split()[3] == "1/2"
    assert f"cut: resume with: cnnkit train --resume {runs / 'cut'}" in lines
    assert any(line.startswith("nan: The validation loss is not finite") for line in lines)
    assert "no-last: no last.pt to resume from" in lines and "notes.txt: a file, not a run directory" in lines


def test_json_holds_what_the_run_directory_says(run_cli, runs):
    rows = as_json(run_cli, str(runs))
    assert set(rows) == set(EXPECTED)
    done = rows["done"]
    best = load_checkpoint(runs / "done" / "best.pt")
    with open(runs / "done" / "metrics.csv", newline="") as f:
        metrics = list(csv.DictReader(f))
    assert (done["epochs_done"], done["epochs_planned"], done["best_epoch"]) == (2, 2, best["epoch"])
    assert done["test_acc"] == pytest.approx(best["metrics"]["test"]["acc"])
    assert done["best_val_acc"] == pytest.approx(float(metrics[best["epoch"] - 1]["val_acc"]))
    assert done["seconds"] == pytest.approx(sum(float(row["seconds"]) for row in metrics))
    assert rows["early"]["test_acc"] is not None and rows["cut"]["test_acc"] is None
    assert rows["bad-json"]["model"] == "" and rows["bad-json"]["epochs_done"] is None


def test_a_failure_is_recorded_and_an_interruption_is_not(runs):
    record = json.loads((runs / "nan" / "status.json").read_text())
    assert record["status"] == "failed" and record["epochs_done"] == 1
    assert record["error"].startswith("The validation loss is not finite after epoch 2")
    assert not (runs / "cut" / "status.json").exists() and not (runs / "done" / "status.json").exists()


def test_sort_by_a_number_puts_the_largest_first_and_unknowns_last(run_cli, runs):
    epochs = [row["epochs_done"] for row in as_json(run_cli, str(runs), "--sort", "epochs").values()]
    known = [e for e in epochs if e is not None]
    assert known == sorted(known, reverse=True) and epochs[len(known):] == [None] * (len(epochs) - len(known))
    statuses = [row["status"] for row in as_json(run_cli, str(runs), "--sort", "status").values()]
    assert statuses == sorted(statuses)


def test_a_misspelt_sort_column_is_a_usage_error_with_a_suggestion(run_cli, runs):
    result = run_cli("runs", str(runs), "--sort", "tset")
    assert result.code == 2
    assert result.err.strip() == ("Error: --sort 'tset' is not a column. Did you mean 'test'? "
                                  "Choose one of: name, model, data, epochs, val, test, time, status.")


def test_name_wildcards_filter_the_rows(run_cli, runs):
    assert list(as_json(run_cli, str(runs), "--name", "bad-*", "--name", "done")) == ["bad-best", "bad-json", "bad-metrics", "done"]
    result = run_cli("runs", str(runs), "--name", "zz*")
    assert result.code == 0 and result.out.strip() == f"No runs in '{runs}' match 'zz*'."


def test_a_run_directory_given_itself_is_listed_alone(run_cli, runs):
    assert list(as_json(run_cli, str(runs / "early"))) == ["early"]


def test_a_missing_or_file_out_is_a_usage_error(run_cli, runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = run_cli("runs")
    assert missing.code == 2
    assert missing.err.strip() == "Error: 'runs' does not exist; pass the folder that holds run directories (train's --out)."
    file = run_cli("runs", str(runs / "notes.txt"))
    assert file.code == 2 and "is a file; pass the folder" in file.err
    (tmp_path / "runs").mkdir()
    empty = run_cli("runs")
    assert empty.code == 0 and empty.out.strip() == "No runs in 'runs'."
    assert run_cli("runs", "--json").out.strip() == "[]"


def test_a_run_held_by_a_live_cnnkit_process_is_running(runs, tmp_path):
    run_dir = Path(shutil.copytree(runs / "cut", tmp_path / "live"))
    code = "import time; print('up', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code, "cnnkit"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "up\n", "its command line is its own once it runs"
        (run_dir / ".lock").write_text(f"{holder.pid} {socket.gethostname()}\n")
        assert [s.status for s in list_runs(tmp_path)] == ["running"]
    finally:
        holder.kill()
        holder.wait()
    assert [s.status for s in list_runs(tmp_path)] == ["interrupted"], "a dead holder's lock is stale"


def test_resuming_clears_an_earlier_failure_record(run_cli, runs, tmp_path, monkeypatch):
    monkeypatch.setattr(fit_module, "plot_curves", lambda *args, **kwargs: None)
    run_dir = Path(shutil.copytree(runs / "cut", tmp_path / "again"))
    (run_dir / "status.json").write_text('{"status": "failed", "error": "out of memory"}')
    assert [s.status for s in list_runs(tmp_path)] == ["failed"]
    result = run_cli("train", "--resume", str(run_dir), "--quiet")
    assert result.code == 0, result.err
    assert not (run_dir / "status.json").exists()
    assert [(s.status, s.epochs_done) for s in list_runs(tmp_path)] == [("finished", 2)]
