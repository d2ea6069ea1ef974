"""The dataset ``csv`` through the installed ``cnnkit``: listed, trained on end to end, and its
errors one line with exit code 2."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

from cnnkit.engine.checkpoint import load_checkpoint


def test_listed_by_cnnkit_datasets_from_its_distribution(cnnkit):
    line = next(line for line in cnnkit("datasets").out.splitlines() if line.startswith("csv "))
    assert "labels.csv" in line and "csvdata" in line
    entry_points = importlib.metadata.entry_points(group="cnnkit")
    assert any(ep.name == "csvdata" and ep.value == "cnnkit_csvdata" for ep in entry_points)


def test_training_on_a_kaggle_folder_learns_the_classes(cnnkit, kaggle, tmp_path):
    result = cnnkit("train", "--data", "csv", "--data-dir", str(kaggle), "--epochs", "4", "--batch-size", "8",
                    "--out", str(tmp_path / "runs"), "--name", "csv", "--quiet")
    assert result.code == 0, result.err
    assert "no test split" in result.out
    best = load_checkpoint(tmp_path / "runs" / "csv" / "best.pt")
    assert best["classes"] == ["dark", "light", "mid"]
    assert best["data"] == str(kaggle / "labels.csv")
    assert best["metrics"]["val_acc"] >= 0.8


def test_preview_reads_the_dataset_of_the_current_folder(cnnkit, kaggle, tmp_path, monkeypatch):
    monkeypatch.chdir(kaggle)
    result = cnnkit("augment", "preview", "--data", "csv", "--augment", "hflip", "--out", str(tmp_path / "p.png"))
    assert result.code == 0, result.err
    assert (tmp_path / "p.png").is_file()


def test_a_missing_folder_is_a_usage_error_in_one_line(cnnkit, tmp_path):
    result = cnnkit("train", "--data", "csv", "--data-dir", str(tmp_path / "nowhere"), "--epochs", "1",
                    "--out", str(tmp_path / "runs"))
    assert result.code == 2
    errors = [line for line in result.err.splitlines() if "nowhere" in line]
    assert len(errors) == 1 and "does not exist; pass the folder that holds labels.csv" in errors[0]


def test_importing_the_plugin_imports_no_torch():
    code = "import sys, cnnkit_csvdata; assert 'torch' not in sys.modules, 'torch imported'"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
