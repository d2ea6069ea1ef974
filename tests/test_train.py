"""`cnnkit train` end to end on the shipped digits."""

import csv
import json
import re

import numpy as np
import pytest
import torch

from cnnkit.engine.checkpoint import load_checkpoint

METRICS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")


def read_metrics(run_dir):
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def only_run(out):
    [run_dir] = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """One run with every default, shared by the tests that inspect it."""
    from cnnkit.options import TrainConfig
    from cnnkit.recipe.run import train

    out = tmp_path_factory.mktemp("runs")
    result = train(TrainConfig(out=str(out), quiet=True))
    return result


@pytest.mark.slow
def test_defaults_reach_97_percent_test_accuracy_on_digits(default_run):
    assert default_run.test["acc"] >= 0.97
    assert 1 <= default_run.best_epoch <= len(default_run.history)


@pytest.mark.slow
def test_run_directory_holds_checkpoints_metrics_curves_and_config(default_run):
    run_dir = default_run.run_dir
    assert {p.name for p in run_dir.iterdir()} == {"best.pt", "last.pt", "metrics.csv", "curves.png", "config.json"}
    rows = read_metrics(run_dir)
    assert [int(r["epoch"]) for r in rows] == list(range(1, len(default_run.history) + 1))
    assert set(rows[0]) == {*METRICS, "seconds"}
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"] == "mnist-cnn" and config["data"] == "digits" and config["name"] == run_dir.name


@pytest.mark.slow
def test_best_checkpoint_is_the_lowest_validation_loss_and_self_describing(default_run):
    rows = read_metrics(default_run.run_dir)
    best_epoch = min(rows, key=lambda r: float(r["val_loss"]))["epoch"]
    best = load_checkpoint(default_run.run_dir / "best.pt")
    assert best["epoch"] == int(best_epoch) == default_run.best_epoch
    assert best["model"] == {"name": "mnist-cnn", "kwargs": {"num_classes": 10, "in_channels": 1}}
    assert best["classes"] == [str(d) for d in range(10)]
    assert best["input_size"] == [1, 28, 28]
    assert set(best["normalization"]) == {"mean", "std"}
    assert best["cnnkit_version"] == "0.1.0"
    assert best["metrics"]["test"]["acc"] == pytest.approx(default_run.test["acc"])


@pytest.mark.slow
def test_best_weights_reproduce_the_reported_test_accuracy(default_run):
    from cnnkit.data.digits import load_digits
    from cnnkit.models.mnist_cnn import MnistCNN

    best = load_checkpoint(default_run.run_dir / "best.pt")
    model = MnistCNN(**best["model"]["kwargs"])
    model.load_state_dict(best["state_dict"])
    model.eval()
    test = load_digits().test
    mean = torch.tensor(best["normalization"]["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(best["normalization"]["std"]).view(1, -1, 1, 1)
    with torch.no_grad():
        predictions = model((test.images.float() / 255 - mean) / std).argmax(1)
    assert (predictions == test.labels).float().mean().item() == pytest.approx(default_run.test["acc"])


@pytest.mark.slow
def test_last_checkpoint_carries_the_whole_run_state(default_run):
    last = load_checkpoint(default_run.run_dir / "last.pt")
    assert last["epoch"] == len(default_run.history) == len(last["history"])
    assert last["optimizer"]["state"] and last["scheduler"]["last_epoch"] > 0
    assert last["scaler"] == {}, "the gradient scaler is only on (and has state) with fp16"
    assert last["early_stopping"]["best_epoch"] == default_run.best_epoch
    assert set(last["rng"]) == {"shuffle", "processes"} and len(last["rng"]["processes"]) == last["world_size"] == 1
    assert set(last["rng"]["processes"][0]) == {"python", "numpy", "torch", "augment", "sample_augment"}


@pytest.mark.slow
def test_config_json_records_what_auto_resolved_to(default_run):
    from cnnkit.engine.precision import cpu_has_native_bf16

    config = json.loads((default_run.run_dir / "config.json").read_text())
    expected = "bf16" if cpu_has_native_bf16() else "fp32"
    assert (config["strategy"], config["device"], config["precision"]) == ("single", "cpu", expected)
    assert config["channels_last"] is (expected == "bf16") and config["deterministic"] is True


@pytest.mark.slow
def test_curves_png_shows_train_and_validation_lines(default_run):
    from PIL import Image

    image = Image.open(default_run.run_dir / "curves.png").convert("RGB")
    assert image.size == (1000, 400)
    pixels = np.asarray(image).reshape(-1, 3).astype(int)
    def near(target):
        return (np.abs(pixels - target).sum(axis=1) < 30).sum() > 200
    assert near((31, 119, 180)), "train line (matplotlib C0 blue) missing"
    assert near((255, 127, 14)), "validation line (matplotlib C1 orange) missing"


@pytest.mark.slow
def test_summary_line_and_per_epoch_lines_when_not_a_terminal(run_cli, tmp_path):
    result = run_cli("train", "--epochs", "2", "--out", str(tmp_path), "--name", "short")
    assert result.code == 0, result.err
    lines = result.out.strip().splitlines()
    assert re.fullmatch(r"Training mnist-cnn on digits .* on cpu, (fp32|bf16, channels-last); run: .*", lines[0])
    assert re.fullmatch(r"epoch 1/2  train loss \d\.\d{4} acc [\d.]+%  val loss \d\.\d{4} acc [\d.]+%  lr \S+  [\d.]+s", lines[1])
    assert re.fullmatch(
        rf"best epoch [12]: val loss \d\.\d{{4}}, val acc [\d.]+%, test acc [\d.]+%; run: {re.escape(str(tmp_path / 'short'))}",
        lines[-1],
    )


def test_quiet_prints_only_the_summary(run_cli, tmp_path):
    result = run_cli("train", "--epochs", "1", "--out", str(tmp_path), "--quiet")
    assert result.code == 0
    assert len(result.out.strip().splitlines()) == 1 and result.out.startswith("best epoch 1:")


@pytest.mark.slow
def test_same_seed_same_metrics_and_different_seed_differs(run_cli, tmp_path):
    def metrics(seed, name):
        assert run_cli("train", "--epochs", "2", "--quiet", "--seed", seed, "--augment", "random-shift",
                       "--out", str(tmp_path), "--name", name).code == 0
        return [[row[k] for k in METRICS] for row in read_metrics(tmp_path / name)]

    first, again, other = metrics("7", "a"), metrics("7", "b"), metrics("8", "c")
    assert first == again
    assert first != other


@pytest.mark.slow
def test_config_file_repeats_a_run_and_flags_override_it(run_cli, tmp_path):
    assert run_cli("train", "--epochs", "2", "--lr", "0.001", "--quiet", "--out", str(tmp_path), "--name", "orig").code == 0
    config = tmp_path / "orig" / "config.json"
    assert run_cli("train", "--config", str(config)).code == 0
    repeat = tmp_path / "orig-2"
    assert json.loads((repeat / "config.json").read_text())["lr"] == 0.001
    def strip(rows):
        return [[r[k] for k in METRICS] for r in rows]
    assert strip(read_metrics(repeat)) == strip(read_metrics(tmp_path / "orig"))

    toml = tmp_path / "c.toml"
    toml.write_text(f'epochs = 3\nbatch-size = 32\nout = "{tmp_path}"\nname = "fromtoml"\nquiet = true\n')
    assert run_cli("train", "--config", str(toml), "--epochs", "1").code == 0
    saved = json.loads((tmp_path / "fromtoml" / "config.json").read_text())
    assert (saved["epochs"], saved["batch_size"]) == (1, 32)


@pytest.mark.slow
def test_early_stopping_ends_the_run_and_keeps_the_best_epoch(run_cli, tmp_path):
    result = run_cli("train", "--epochs", "30", "--patience", "1", "--scheduler", "none", "--lr", "0.01",
                     "--optimizer", "sgd", "--momentum", "0", "--out", str(tmp_path), "--name", "es")
    assert result.code == 0
    rows = read_metrics(tmp_path / "es")
    losses = [float(r["val_loss"]) for r in rows]
    assert len(rows) < 30 and "Early stop" in result.out
    assert losses[-1] >= min(losses[:-1])
    assert load_checkpoint(tmp_path / "es" / "best.pt")["epoch"] == losses.index(min(losses)) + 1


@pytest.mark.parametrize(("optimizer", "scheduler"), [("sgd", "step"), ("adam", "onecycle"), ("adamw", "none")])
@pytest.mark.slow
def test_every_optimizer_and_scheduler_trains(run_cli, tmp_path, optimizer, scheduler):
    result = run_cli("train", "--epochs", "2", "--optimizer", optimizer, "--scheduler", scheduler, "--nesterov",
                     "--step-size", "1", "--init", "he-normal", "--out", str(tmp_path), "--name", "x", "--quiet")
    assert result.code == 0, result.err
    rows = read_metrics(tmp_path / "x")
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    first, second = (float(r["lr"]) for r in rows)
    expected = {"step": first * 0.1, "none": first}.get(scheduler)
    if expected is None:
        assert first == pytest.approx(2e-3 / 25), "onecycle starts at the peak lr / 25"
        assert second > first
    else:
        assert second == pytest.approx(expected)
    assert load_checkpoint(tmp_path / "x" / "last.pt")["config"]["optimizer"] == optimizer


@pytest.mark.slow
def test_terminal_mode_draws_a_bar_per_epoch_then_the_epoch_line_in_full(tmp_path, capsys):
    from cnnkit.options import TrainConfig
    from cnnkit.recipe.run import train

    train(TrainConfig(epochs=2, out=str(tmp_path)), bars=True)
    captured = capsys.readouterr()
    assert "epoch 1/2:" in captured.err and "epoch 2/2:" in captured.err, "a bar while each epoch runs"
    lines = [line for line in captured.out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
    assert all(re.search(r"val loss \d\.\d{4} acc [\d.]+%  lr \S+  [\d.]+s$", line) for line in lines)


def test_bars_read_live_metrics_every_refresh_steps_batches_whatever_the_speed(capsys):
    from cnnkit.engine.progress import Progress

    reads = []

    def read_metrics():
        reads.append(1)
        return {"loss": 0.5, "acc": 0.25}

    progress = Progress(3, bars=True, refresh_steps=3)
    progress.start_epoch(1, 7)
    for step in range(1, 8):
        progress.step(step, read_metrics)
    assert len(reads) == 2, "metrics (a device sync) are read at steps 3 and 6 only"
    assert progress._bar.postfix == "acc=25.00%, loss=0.5000"
    progress.close()
