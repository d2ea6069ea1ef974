"""Every row of docs/errors.md, planted and checked: exit code, answer, and nothing written lost."""

import errno
import json
import os
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
ROW = re.compile(r"^\| ([a-z0-9-]+) \| .*? \| (.*) \| (\d+) \|$")


def documented_rows() -> dict[str, tuple[str, int]]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            answer = re.findall(r"`([^`]*)`", match.group(2))[-1]
            rows[match.group(1)] = (answer, int(match.group(3)))
    return rows


ROWS = documented_rows()
CASES = {}
WHOLE_STDERR = {"unknown-model", "unknown-command", "config-unknown-key", "name-path"}  # the answer is all there is on stderr
SLOW_ROWS = {  # rows that train (or wait on a timeout) for half a second or more: left out of 'make test-fast'
    "config-bom", "config-whole-float", "ctrl-c", "dataset-shadow", "eval-again", "file-size-limit", "image-size-too-small",
    "image-thin", "link-other-class", "loss-nan", "narrow-terminal", "onecycle-short", "rdzv-alone", "run-exists",
    "runs-in-class", "runs-inside-data", "runs-nested", "umask",
}


def case(row_id):
    def add(function):
        CASES[row_id] = function
        return function

    return add


def simple(row_id, *args):
    CASES[row_id] = lambda t: t.train(*args)


simple("lr-nan", "--lr", "nan")
simple("label-smoothing-nan", "--label-smoothing", "nan")
simple("momentum-inf", "--optimizer", "sgd", "--momentum", "inf")
simple("epochs-word", "--epochs", "ten")
simple("seed-too-big", "--seed", str(2**64))
simple("name-blank", "--name", "  ")
simple("name-control", "--name", "a\tb")
simple("name-path", "--name", "a/b")
simple("model-kwargs-unknown", "--model", "resnet20", "--model-kwargs", "shortcat=B")
simple("model-kwargs-type", "--model", "mnist-cnn2", "--model-kwargs", "dropout=high")
simple("model-kwargs-float-choice", "--model", "alexnet-2012", "--model-kwargs", "groups=2.0")
simple("model-kwargs-out-of-range", "--model", "mnist-cnn2", "--model-kwargs", "dropout=1.5")
simple("model-kwargs-twice", "--model", "resnet20", "--model-kwargs", "shortcut=B,shortcut=A")
simple("rdzv-timeout-huge", "--strategy", "ddp", "--nnodes", "2", "--node-rank", "0", "--rdzv-endpoint", "127.0.0.1:29641",
       "--rdzv-timeout", "1e15")
simple("image-size-too-small", "--model", "alexnet-2012", "--image-size", "32")
simple("image-size-bad", "--image-size", "0x5")
simple("onecycle-short", "--scheduler", "onecycle", "--epochs", "1", "--batch-size", "128")
simple("loss-nan", "--optimizer", "sgd", "--lr", "1e6", "--epochs", "2")
simple("missing-folder", "--data", "./no/such")
simple("data-empty", "--data", "")
simple("name-too-long", "--name", "x" * 300)
simple("name-invisible", "--name", "a\u202eb")
simple("weight-decay-nan", "--weight-decay", "1e308", "--epochs", "2")


simple("class-weights-missing", "--class-weights", "weights.json")
simple("sampler-unknown", "--sampler", "balance")
simple("log-unknown", "--log", "tensorbord")


@case("log-missing-package")
def _(t):
    t.monkeypatch.setitem(sys.modules, "mlflow", None)  # what Python finds when the package is not installed
    t.monkeypatch.delitem(sys.modules, "cnnkit.tracking.mlflow", raising=False)
    return t.cli("train", "--log", "mlflow", "--out", str(t.out))


def weights_file_case(row_id, content, *, folder=False):
    """``--class-weights w.json`` (relative, in the working folder) holding ``content``, on the
    digits or on a folder of classes dark and light."""
    def run(t):
        t.monkeypatch.chdir(t.tmp)
        (t.tmp / "w.json").write_text(content)
        if folder:
            two_classes(t.tmp / "data")
            return t.train("--data", str(t.tmp / "data"), "--class-weights", "w.json")
        return t.train("--class-weights", "w.json")

    CASES[row_id] = run


weights_file_case("class-weights-length", "[1, 2, 3]")
weights_file_case("class-weights-unknown-class", '{"dark": 1, "ligth": 2}', folder=True)
weights_file_case("class-weights-missing-class", '{"dark": 1}', folder=True)
weights_file_case("class-weights-bad-value", "[1, -2, 1, 1, 1, 1, 1, 1, 1, 1]")
weights_file_case("class-weights-not-json", "[1, 2\n")

GAP_DATA = """
    from cnnkit import hookimpl

    def gap_data(request):
        import torch
        from cnnkit.contracts import DataSplits, Split

        images = torch.zeros(9, 1, 28, 28, dtype=torch.uint8)
        labels = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1, 2])
        return DataSplits(Split(images[:6], labels[:6]), Split(images[6:], labels[6:]), None, ["a", "b", "c"], "gap")

    @hookimpl
    def register_datasets(register):
        register("gap-data", gap_data)
"""


@case("class-weights-auto-absent-class")
def _(t):
    t.install_plugin("cnnkit-gap", GAP_DATA)
    return t.train("--data", "gap-data", "--class-weights", "auto")


@case("unknown-model")
def _(t):
    result = t.train("--model", "mnist-cnm")
    assert not (t.out / "again").exists(), "nothing is written before the input is checked"
    return result


@case("config-not-a-file")
def _(t):
    return t.train("--config", "/dev/null")


@case("runs-missing")
def _(t):
    (t.tmp / "file").write_text("")
    assert "is a file; pass the folder" in t.cli("runs", str(t.tmp / "file")).err
    return t.cli("runs", str(t.tmp / "nope"))


@case("runs-sort-unknown")
def _(t):
    return t.cli("runs", "{out}", "--sort", "tset")


@case("runs-damaged")
def _(t):
    (t.out / "bad").mkdir()
    (t.out / "bad" / "config.json").write_text("{")
    (t.out / "notes.txt").write_text("")
    result = t.cli("runs", "{out}")
    assert re.search(r"^earlier .* finished$", result.out, re.M) and re.search(r"^notes\.txt .* not a run$", result.out, re.M)
    return result


@case("config-bom")
def _(t):
    (t.tmp / "bom.toml").write_bytes("\ufeffepochs = 1\n".encode("utf-8"))
    return t.train("--config", str(t.tmp / "bom.toml"))


@case("out-unwritable")
def _(t):
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self.name == "again":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_mkdir(self, *args, **kwargs)

    t.monkeypatch.setattr(Path, "mkdir", mkdir)
    return t.train()


@case("split-and-classes")
def _(t):
    for split in ("train", "val"):
        two_classes(t.tmp / "data" / split)
    two_classes(t.tmp / "data" / "cat")
    return t.train("--data", str(t.tmp / "data"))


@case("hidden-files")
def _(t):
    two_classes(t.tmp / "data", count=5)
    (t.tmp / "data" / "dark" / "._0.png").write_bytes(b"macOS resource fork")
    (t.tmp / "data" / "light" / ".ipynb_checkpoints").mkdir()
    Image.new("L", (8, 8)).save(t.tmp / "data" / "light" / ".ipynb_checkpoints" / "0-checkpoint.png")
    return t.cli("train", "--data", str(t.tmp / "data"), "--epochs", "1", "--out", str(t.out), "--name", "again")


@case("broken-link")
def _(t):
    two_classes(t.tmp / "data")
    (t.tmp / "data" / "dark" / "gone.png").symlink_to(t.tmp / "nowhere.png")
    return t.train("--data", str(t.tmp / "data"), "--epochs", "1")


def train_twice(t, out: Path):
    two_classes(t.tmp / "data")
    first = t.cli("train", "--data", str(t.tmp / "data"), "--epochs", "1", "--out", str(out), "--quiet")
    assert first.code == 0, first.err
    result = t.train("--data", str(t.tmp / "data"), "--epochs", "1", "--batch-size", "4")
    assert load_classes(t.out / "again") == ["dark", "light"]
    return result


def load_classes(run_dir: Path) -> list[str]:
    from cnnkit.engine.checkpoint import load_checkpoint

    return load_checkpoint(run_dir / "best.pt")["classes"]


@case("runs-nested")
def _(t):
    return train_twice(t, t.tmp / "data" / "outputs" / "exp1")


@case("runs-in-class")
def _(t):
    result = train_twice(t, t.tmp / "data" / "dark" / "runs")
    assert "(6 train / 2 val images)" not in result.out
    return result
simple("run-exists", "--name", "earlier", "--epochs", "1")
simple("resume-changed", "--resume", "{out}/earlier", "--lr", "0.01")


@case("unknown-command")
def _(t):
    return t.cli("trian")


def config_case(row_id, name, text):
    def run(t):
        path = t.tmp / name
        path.write_text(text)
        return t.train("--config", str(path))

    CASES[row_id] = run


config_case("config-float-epochs", "c.toml", "epochs = 2.9\n")
config_case("config-bool-lr", "c.toml", "lr = true\n")
config_case("config-list-augment", "c.toml", 'augment = ["hflip", 3]\n')
config_case("config-number-path", "c.toml", "out = 5\n")
config_case("config-null-seed", "c.json", '{"seed": null}')
config_case("config-unknown-key", "c.toml", "epoch = 3\n")
config_case("config-unknown-keys", "c.toml", "epoch = 3\nlrr = 0.1\n")
config_case("config-duplicate-key", "c.json", '{"epochs": 1, "epochs": 2}')
config_case("config-whole-float", "c.toml", "epochs = 1e0\n")
config_case("config-batch-huge", "c.toml", "batch_size = 1e22\n")
config_case("config-bad-name", "c.toml", 'model = "mnist-cnm"\n')
config_case("config-image-size-number", "c.toml", "image_size = 4\n")


@case("config-relative-data")
def _(t):
    two_classes(t.tmp / "conf" / "imgs")
    (t.tmp / "conf" / "c.toml").write_text('data = "imgs"\nepochs = 1\n')
    t.monkeypatch.chdir(t.tmp)
    return t.cli("train", "--config", "conf/c.toml", "--out", str(t.out), "--name", "again")


@case("config-relative-missing")
def _(t):
    two_classes(t.tmp / "imgs2")
    (t.tmp / "conf").mkdir()
    (t.tmp / "conf" / "d.toml").write_text('data = "imgs2"\nepochs = 1\n')
    t.monkeypatch.chdir(t.tmp)
    return t.cli("train", "--config", "conf/d.toml", "--out", str(t.out), "--name", "again")


@case("config-relative-link")
def _(t):
    two_classes(t.tmp / "conf" / "imgs")
    (t.tmp / "conf" / "g.toml").write_text('data = "imgs"\nepochs = 1\n')
    (t.tmp / "sl").mkdir()
    (t.tmp / "sl" / "g.toml").symlink_to(os.path.join("..", "conf", "g.toml"))
    t.monkeypatch.chdir(t.tmp)
    return t.cli("train", "--config", "sl/g.toml", "--out", str(t.out), "--name", "again")


@case("rdzv-alone")
def _(t):
    import socket

    from cnnkit.engine import launch

    t.monkeypatch.setattr(launch, "RDZV_TIMEOUT", 3)  # for a StrategyOptions that does not carry --rdzv-timeout
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return t.train("--strategy", "ddp", "--nnodes", "2", "--node-rank", "0", "--rdzv-endpoint", f"127.0.0.1:{port}",
                   "--rdzv-timeout", "3", "--device", "cpu")


@case("no-plugins-model")
def _(t):
    t.monkeypatch.setenv("CNNKIT_NO_PLUGINS", "1")
    return t.train("--model", "lenet5")


@case("no-plugins-listing")
def _(t):
    t.monkeypatch.setenv("CNNKIT_NO_PLUGINS", "1")
    return t.cli("models", "lenet5")


@case("out-is-a-file")
def _(t):
    (t.tmp / "notes.txt").write_text("mine")
    return t.cli("train", "--out", str(t.tmp / "notes.txt"))


def two_classes(root: Path, size: int = 8, count: int = 4) -> None:
    for name, value in (("dark", 20), ("light", 230)):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.fromarray(np.full((size, size), value + i, np.uint8)).save(root / name / f"{i}.png")


@case("image-16-bit")
def _(t):
    for name, value in (("dark", 5000), ("light", 60000)):
        (t.tmp / "deep" / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((8, 8), value + i, np.uint16)).save(t.tmp / "deep" / name / f"{i}.png")
    return t.train("--data", str(t.tmp / "deep"), "--epochs", "1", "--batch-size", "4")


@case("image-32-bit-deep")
def _(t):
    two_classes(t.tmp / "data")
    deep = np.linspace(0, 2**24 - 1, 64).round().astype(np.int32).reshape(8, 8)
    Image.fromarray(deep, "I").save(t.tmp / "data" / "dark" / "deep.tif")
    return t.train("--data", str(t.tmp / "data"), "--epochs", "1")


@case("image-32-bit-uniform")
def _(t):
    two_classes(t.tmp / "data")
    Image.fromarray(np.full((8, 8), 2**20, np.int32), "I").save(t.tmp / "data" / "dark" / "flat.tif")
    return t.train("--data", str(t.tmp / "data"), "--epochs", "1")


@case("image-32-bit-negative")
def _(t):
    two_classes(t.tmp / "data")
    Image.fromarray(np.full((8, 8), -2**23, np.int32), "I").save(t.tmp / "data" / "dark" / "negative.tif")
    return t.train("--data", str(t.tmp / "data"), "--epochs", "1")


@case("image-float-range")
def _(t):
    two_classes(t.tmp / "data")
    Image.fromarray(np.linspace(0, 1000, 64, dtype=np.float32).reshape(8, 8), "F").save(t.tmp / "data" / "dark" / "float.tif")
    return t.train("--data", str(t.tmp / "data"), "--epochs", "1")


@case("image-too-large")
def _(t):
    two_classes(t.tmp / "data")
    Image.new("L", (40, 40)).save(t.tmp / "data" / "dark" / "big.png")
    t.monkeypatch.setattr("cnnkit.data.images.MAX_PIXELS", 1000)
    return t.train("--data", str(t.tmp / "data"), "--epochs", "1")


@case("image-thin")
def _(t):
    two_classes(t.tmp / "data")
    Image.new("L", (1, 200_000)).save(t.tmp / "data" / "dark" / "thin.png")
    assert (t.tmp / "data" / "dark" / "thin.png").stat().st_size < 2000
    return t.train("--data", str(t.tmp / "data"), "--epochs", "1", "--batch-size", "4")


@case("image-broken")
def _(t):
    two_classes(t.tmp / "data")
    (t.tmp / "data" / "dark" / "broken.png").write_bytes(b"not a png")
    result = t.train("--data", str(t.tmp / "data"), "--epochs", "1")
    assert "1 unreadable file(s) skipped" in result.out
    return result


@case("class-all-broken")
def _(t):
    two_classes(t.tmp / "data")
    for path in (t.tmp / "data" / "dark").iterdir():
        path.write_bytes(b"\x89PNG")
    return t.train("--data", str(t.tmp / "data"))


@case("dataset-offline")
def _(t):
    t.monkeypatch.setenv("CNNKIT_OFFLINE", "1")
    return t.train("--data", "cifar10", "--data-dir", str(t.tmp))


@case("dataset-no-scipy")
def _(t):
    import importlib.util

    real = importlib.util.find_spec
    t.monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "scipy" else real(name, *a))
    return t.train("--data", "svhn", "--data-dir", str(t.tmp))


simple("augment-unknown", "--augment", "hflip, colour-jitter")
simple("augment-parameter", "--augment", "random-crop(paddng=4)")
simple("augment-range", "--augment", "hflip(p=1.5)")
simple("augment-code", "--augment", "hflip(__import__('os'))")
simple("augment-mix-order", "--augment", "mixup, hflip")
simple("augment-crop-too-large", "--augment", "random-crop(size=64)")
simple("augment-center-crop-too-large", "--augment", "center-crop(64)")
simple("augment-reflect-too-wide", "--augment", "random-crop(padding=30)")
simple("augment-pca-grayscale", "--augment", "pca-lighting")


@case("augment-preset-tiny")
def _(t):
    two_classes(t.tmp / "data")
    return t.train("--data", str(t.tmp / "data"), "--augment", "imagenet", "--epochs", "1")


@case("mix-prob-unused")
def _(t):
    two_classes(t.tmp / "data")
    return t.train("--data", str(t.tmp / "data"), "--augment", "hflip", "--mix-prob", "0.5", "--epochs", "1")
simple("data-in-memory-bad", "--data-in-memory", "maybe")


@case("data-check-missing")
def _(t):
    return t.cli("data", "check", str(t.tmp / "no" / "such"))


@case("data-check-misspelt")
def _(t):
    return t.cli("data", "check", "digitz")


@case("data-check-named")
def _(t):
    t.monkeypatch.chdir(t.tmp)
    return t.cli("data", "check", "digits")


@case("data-check-not-downloaded")
def _(t):
    result = t.cli("data", "check", "mnist", "--data-dir", str(t.tmp / "datasets"))
    assert not (t.tmp / "datasets").exists()
    return result


@case("data-check-overlap")
def _(t):
    two_classes(t.tmp / "data")
    shutil.copy(t.tmp / "data" / "light" / "0.png", t.tmp / "data" / "dark" / "x.png")
    return t.cli("data", "check", str(t.tmp / "data"))


@case("data-check-folder-named-like-dataset")
def _(t):
    two_classes(t.tmp / "digits")
    t.monkeypatch.chdir(t.tmp)
    return t.cli("data", "check", "./digits")


def train_counting(t, images: str):
    result = t.cli("train", "--data", str(t.tmp / "data"), "--epochs", "1", "--out", str(t.out), "--name", "again")
    assert images in result.out, result.out + result.err
    return result


@case("link-file-other-class")
def _(t):
    two_classes(t.tmp / "data", count=5)
    (t.tmp / "data" / "dark" / "x.png").symlink_to("../light/0.png")
    return train_counting(t, "(8 train / 2 val images)")


@case("class-link-loop")
def _(t):
    two_classes(t.tmp / "data", count=5)
    (t.tmp / "data" / "extra").symlink_to(".")
    return train_counting(t, "(8 train / 2 val images)")


@case("class-link-other-class")
def _(t):
    two_classes(t.tmp / "data", count=5)
    (t.tmp / "data" / "bright").symlink_to("light")
    return t.train("--data", str(t.tmp / "data"))


@case("class-link-other-split")
def _(t):
    two_classes(t.tmp / "data" / "train")
    two_classes(t.tmp / "data" / "val", count=2)
    shutil.rmtree(t.tmp / "data" / "val" / "light")
    (t.tmp / "data" / "val" / "light").symlink_to("../train/light")
    return t.train("--data", str(t.tmp / "data"))


@case("link-two-classes")
def _(t):
    two_classes(t.tmp / "data", count=5)
    (t.tmp / "ext").mkdir()
    Image.fromarray(np.full((8, 8), 99, np.uint8)).save(t.tmp / "ext" / "a.png")
    for name in ("dark", "light"):
        (t.tmp / "data" / name / "x").symlink_to(t.tmp / "ext")
    return t.train("--data", str(t.tmp / "data"))


@case("link-loop")
def _(t):
    two_classes(t.tmp / "data", count=5)
    (t.tmp / "data" / "dark" / "loop").symlink_to("..")
    result = t.cli("train", "--data", str(t.tmp / "data"), "--epochs", "1", "--out", str(t.out), "--name", "again")
    assert "(8 train / 2 val images)" in result.out, "5 + 5 images, none read twice"
    return result


@case("link-other-class")
def _(t):
    two_classes(t.tmp / "data", count=5)
    (t.tmp / "data" / "dark" / "more").symlink_to("../light")
    result = t.cli("train", "--data", str(t.tmp / "data"), "--epochs", "1", "--out", str(t.out), "--name", "again")
    assert "(8 train / 2 val images)" in result.out, "5 + 5 images, none read twice"
    return result


def finetune_case(row_id, *args):
    def run(t):
        two_classes(t.tmp / "data")
        return t.cli("finetune", "--data", str(t.tmp / "data"), "--out", "{out}", "--name", "again", *args)

    CASES[row_id] = run


finetune_case("finetune-no-weights", "--backbone", "mnist-cnn")
finetune_case("finetune-freeze-word", "--backbone", "resnet18", "--freeze", "some")
finetune_case("finetune-unfreeze-nothing", "--backbone", "resnet18", "--freeze", "none", "--unfreeze-at", "3")
finetune_case("finetune-weights-name", "--backbone", "resnet18", "--weights", "IMAGENET1K_V3")
finetune_case("finetune-init-needs-batch", "--backbone", "resnet18", "--init", "lsuv")


@case("finetune-offline")
def _(t):
    import torchvision.models as tvm

    t.monkeypatch.setenv("TORCH_HOME", str(t.tmp / "empty"))
    weights = tvm.ResNet18_Weights.IMAGENET1K_V1.value
    t.monkeypatch.setattr(weights, "url", weights.url.replace("https://download.pytorch.org", "http://127.0.0.1:9"))
    two_classes(t.tmp / "data")
    return t.cli("finetune", "--backbone", "resnet18", "--data", str(t.tmp / "data"), "--out", "{out}", "--name", "again")


@case("finetune-option-in-train")
def _(t):
    (t.tmp / "c.toml").write_text('freeze = "features"\n')
    return t.train("--config", str(t.tmp / "c.toml"))


finetune_case("finetune-weights-no-pretrained", "--backbone", "resnet18", "--weights", "w.pth", "--no-pretrained")
finetune_case("finetune-frozen-random", "--backbone", "resnet18", "--no-pretrained", "--freeze", "features")
finetune_case("finetune-unfreeze-random", "--backbone", "resnet18", "--no-pretrained", "--unfreeze-at", "2")
finetune_case("finetune-lr-mult-zero", "--backbone", "resnet18", "--backbone-lr-mult", "0")
finetune_case("finetune-unfreeze-after-end", "--backbone", "{out}/earlier", "--unfreeze-at", "3", "--epochs", "1")
finetune_case("finetune-lr-mult-unused", "--backbone", "{out}/earlier", "--backbone-lr-mult", "0.5", "--epochs", "1")


@case("finetune-cache-hash")
def _(t):
    (t.tmp / "home" / "hub" / "checkpoints").mkdir(parents=True)
    (t.tmp / "home" / "hub" / "checkpoints" / "resnet18-f37072fd.pth").write_bytes(b"not the published weights")
    t.monkeypatch.setenv("TORCH_HOME", str(t.tmp / "home"))
    two_classes(t.tmp / "data")
    return t.cli("finetune", "--backbone", "resnet18", "--data", str(t.tmp / "data"), "--out", "{out}", "--name", "again")


def resume_with_last_pt(t, model: str, num_classes: int):
    """A copy of the earlier run whose last.pt holds ``model``'s weights for ``num_classes``."""
    from cnnkit.engine.checkpoint import load_checkpoint, save_checkpoint
    from cnnkit.plugins import registry

    shutil.copytree(t.out / "earlier", t.out / "again")
    saved = load_checkpoint(t.out / "again" / "last.pt")
    saved["config"] = {**saved["config"], "model": model}
    saved["state_dict"] = registry("models").get(model).create(num_classes=num_classes).state_dict()
    save_checkpoint(t.out / "again" / "last.pt", saved)
    return t.train("--resume", str(t.out / "again"), "--epochs", "2")


CASES["resume-other-model"] = lambda t: resume_with_last_pt(t, "mnist-cnn2", 10)
CASES["resume-other-classes"] = lambda t: resume_with_last_pt(t, "mnist-cnn", 3)


@case("split-case")
def _(t):
    two_classes(t.tmp / "data" / "Train")
    two_classes(t.tmp / "data" / "Validation")
    result = t.train("--data", str(t.tmp / "data"), "--epochs", "1", "--batch-size", "4")
    assert "no test split" in result.out
    return result


@case("split-two-val")
def _(t):
    for split in ("train", "val", "valid"):
        two_classes(t.tmp / "data" / split)
    return t.train("--data", str(t.tmp / "data"))


@case("split-no-train")
def _(t):
    two_classes(t.tmp / "data")
    two_classes(t.tmp / "data" / "test")
    return t.train("--data", str(t.tmp / "data"))


@case("empty-class")
def _(t):
    two_classes(t.tmp / "data")
    (t.tmp / "data" / "empty").mkdir()
    return t.train("--data", str(t.tmp / "data"))


@case("runs-inside-data")
def _(t):
    two_classes(t.tmp / "data")
    first = t.cli("train", "--data", str(t.tmp / "data"), "--epochs", "1", "--out", str(t.tmp / "data" / "runs"), "--quiet")
    assert first.code == 0, first.err
    result = t.train("--data", str(t.tmp / "data"), "--epochs", "1", "--batch-size", "4")
    assert json.loads((t.out / "again" / "config.json").read_text())["data"] == str(t.tmp / "data")
    return result


@case("dataset-shadow")
def _(t):
    (t.tmp / "digits").mkdir()
    t.monkeypatch.chdir(t.tmp)
    return t.train("--data", "digits", "--epochs", "1")


@case("file-size-limit")
def _(t):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    done = subprocess.run(
        [sys.executable, "-m", "cnnkit", "train", "--epochs", "1", "--out", str(t.out), "--name", "again"],
        preexec_fn=limit, capture_output=True, text=True, timeout=300,
    )
    assert json.loads((t.out / "again" / "config.json").read_text())["name"] == "again", "written before: kept"
    return SimpleNamespace(code=done.returncode, out=done.stdout, err=done.stderr)


@case("disk-full")
def _(t):
    real_fsync = os.fsync

    def nearly_full(fd):
        """Small files still fit; the first checkpoint does not."""
        if os.fstat(fd).st_size > 10_000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    t.monkeypatch.setattr(os, "fsync", nearly_full)
    result = t.train("--epochs", "1")
    assert json.loads((t.out / "again" / "config.json").read_text())["name"] == "again", "written before: kept"
    assert not list((t.out / "again").glob(".*.tmp")), "no half-written file is left"
    return result


@case("umask")
def _(t):
    previous = os.umask(0o027)
    try:
        result = t.train("--epochs", "1")
    finally:
        os.umask(previous)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (t.out / "again").iterdir()}
    assert set(modes) == {"best.pt", "last.pt", "metrics.csv", "curves.png", "config.json"}
    assert set(modes.values()) == {0o640}, modes
    return result


@case("narrow-terminal")
def _(t):
    from cnnkit.options import TrainConfig
    from cnnkit.recipe.run import train

    t.monkeypatch.setenv("COLUMNS", "80")
    t.capsys.readouterr()
    train(TrainConfig(epochs=1, out=str(t.out), name="again"), bars=True)
    captured = t.capsys.readouterr()
    assert "epoch 1/1:" in captured.err, "the bar was drawn"
    return SimpleNamespace(code=0, out=captured.out, err=captured.err)


@case("ctrl-c")
def _(t):
    from cnnkit.recipe import fit as run_module

    original = run_module.TrainingRun.record

    def record(self, row):
        original(self, row)
        raise KeyboardInterrupt

    t.monkeypatch.setattr(run_module.TrainingRun, "record", record)
    return t.train("--epochs", "3")


class Payload:
    def __reduce__(self):
        return (print, ("arbitrary code ran",))


@case("evil-checkpoint")
def _(t):
    import torch

    shutil.copytree(t.out / "earlier", t.tmp / "handed")
    torch.save({"format": "cnnkit.checkpoint", "state_dict": Payload()}, t.tmp / "handed" / "last.pt")
    result = t.cli("train", "--resume", str(t.tmp / "handed"))
    assert "arbitrary code ran" not in result.out
    return result


@case("eval-not-a-checkpoint")
def _(t):
    return t.cli("evaluate", str(t.out / "earlier" / "config.json"))


@case("eval-missing")
def _(t):
    return t.cli("evaluate", str(t.out / "nope"))


@case("eval-again")
def _(t):
    shutil.copytree(t.out / "earlier", t.tmp / "copy")
    assert t.cli("evaluate", str(t.tmp / "copy")).code == 0
    first = snapshot(t.tmp / "copy" / "eval-test")
    result = t.cli("evaluate", str(t.tmp / "copy"))
    assert snapshot(t.tmp / "copy" / "eval-test") == first
    return result


def deny_mkdir(t, name: str) -> None:
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self.name == name:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_mkdir(self, *args, **kwargs)

    t.monkeypatch.setattr(Path, "mkdir", mkdir)


@case("eval-out-unwritable")
def _(t):
    deny_mkdir(t, "report")
    return t.cli("evaluate", str(t.out / "earlier"), "--out", str(t.tmp / "report"))


@case("cam-in-data")
def _(t):
    from cnnkit.engine.checkpoint import load_checkpoint, save_checkpoint

    two_classes(t.tmp / "data")
    saved = load_checkpoint(t.out / "earlier" / "best.pt")
    saved["config"]["data"] = str(t.tmp / "data")  # as if trained on that folder
    save_checkpoint(t.tmp / "folder.pt", saved)
    result = t.cli("predict", str(t.tmp / "folder.pt"), str(t.tmp / "data" / "dark"), "--cam", str(t.tmp / "data" / "dark" / "cams"))
    assert not (t.tmp / "data" / "dark" / "cams").exists()
    return result


@case("cam-layer-unknown")
def _(t):
    Image.new("L", (28, 28)).save(t.tmp / "x.png")
    return t.cli("predict", str(t.out / "earlier"), str(t.tmp / "x.png"), "--cam", str(t.tmp / "cams"), "--cam-layer", "8")


@case("tta-unknown")
def _(t):
    Image.new("L", (28, 28)).save(t.tmp / "x.png")
    predict = t.cli("predict", str(t.out / "earlier"), str(t.tmp / "x.png"), "--tta", "ten-crops")
    assert predict.code == 2 and "Did you mean 'ten-crop'?" in predict.err
    return t.cli("evaluate", str(t.out / "earlier"), "--tta", "ten-crops")


@case("tta-crops-whole-pictures")
def _(t):
    Image.new("L", (28, 28)).save(t.tmp / "x.png")
    predict = t.cli("predict", str(t.out / "earlier"), str(t.tmp / "x.png"), "--tta", "ten-crop")
    assert predict.code == 2 and "--tta ten-crop cuts 28x28 crops from larger pictures" in predict.err
    return t.cli("evaluate", str(t.out / "earlier"), "--tta", "five-crop")


@case("export-unwritable")
def _(t):
    import tempfile

    (t.tmp / "locked").mkdir()
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).name == "locked":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    t.monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    return t.cli("export", str(t.out / "earlier"), "--format", "torchscript", "--out", str(t.tmp / "locked" / "m.torchscript.pt"))


@case("export-torchscript")
def _(t):
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = t.cli("export", str(t.out / "earlier"), "--format", "torchscript", "--out", str(t.tmp / "m.torchscript.pt"))
    assert not [w for w in seen if issubclass(w.category, FutureWarning)], [str(w.message) for w in seen]
    return result


@case("preview-exists")
def _(t):
    (t.tmp / "p.png").write_bytes(b"mine")
    result = t.cli("augment", "preview", "--augment", "hflip", "--out", str(t.tmp / "p.png"))
    assert (t.tmp / "p.png").read_bytes() == b"mine"
    return result


@case("plot-exists")
def _(t):
    (t.tmp / "c.png").write_bytes(b"mine")
    result = t.cli("plot", str(t.out / "earlier"), str(t.out / "earlier"), "--out", str(t.tmp / "c.png"))
    assert (t.tmp / "c.png").read_bytes() == b"mine"
    return result


@case("plot-out-folder")
def _(t):
    (t.tmp / "d.png").mkdir()
    result = t.cli("plot", str(t.out / "earlier"), "--out", str(t.tmp / "d.png"), "--force")
    assert (t.tmp / "d.png").is_dir() and not any((t.tmp / "d.png").iterdir())
    return result


@case("plot-in-data")
def _(t):
    two_classes(t.tmp / "data")
    shutil.copytree(t.out / "earlier", t.tmp / "folder-run")
    config = json.loads((t.tmp / "folder-run" / "config.json").read_text())
    (t.tmp / "folder-run" / "config.json").write_text(json.dumps({**config, "data": str(t.tmp / "data")}))  # as if trained on it
    result = t.cli("plot", str(t.tmp / "folder-run"), "--out", str(t.tmp / "data" / "dark" / "curves.png"))
    assert not (t.tmp / "data" / "dark" / "curves.png").exists()
    return result


@case("preview-in-data")
def _(t):
    two_classes(t.tmp / "data")
    result = t.cli("augment", "preview", "--data", str(t.tmp / "data"), "--augment", "hflip",
                   "--out", str(t.tmp / "data" / "light" / "p.png"))
    assert not (t.tmp / "data" / "light" / "p.png").exists()
    return result


@case("torchrun-single")
def _(t):
    for key, value in {"LOCAL_RANK": "0", "RANK": "0", "WORLD_SIZE": "2"}.items():
        t.monkeypatch.setenv(key, value)
    return t.train("--strategy", "single")


BAD_MODELS = """
    from cnnkit import hookimpl

    def str_net(**kwargs):
        return "not a model"

    def three_net(*, num_classes, in_channels):
        from torch import nn
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 28 * 28, 3))

    def crash(**kwargs):
        raise ZeroDivisionError("model exploded")

    def exit_data(request):
        import sys
        sys.exit(4)

    @hookimpl
    def register_datasets(register):
        register("exit-data", exit_data)
        register("none-data", lambda request: None)

    @hookimpl
    def register_strategies(register):
        register("none-strat", lambda options: None)

    @hookimpl
    def register_augmentations(register):
        register("int-aug", lambda: 3)

    @hookimpl
    def register_initializers(register):
        register("int-init", lambda: 3)

    @hookimpl
    def register_models(register):
        register("ghost-net", "cnnkit_gone:build", input_size=(1, 28, 28))
        register("str-net", str_net, input_size=(1, 28, 28))
        register("zero-net", str_net, input_size=(1, 0, 28))
        register("three-net", three_net, input_size=(1, 28, 28))
        register("crash-net", crash, input_size=(1, 28, 28))
"""


def bad_model_case(row_id, model):
    def run(t):
        t.install_plugin("cnnkit-bad", BAD_MODELS)
        return t.train("--model", model)

    CASES[row_id] = run


bad_model_case("plugin-not-a-module", "str-net")
bad_model_case("plugin-bad-input-size", "zero-net")
bad_model_case("plugin-wrong-output", "three-net")
bad_model_case("plugin-raising-factory", "crash-net")


def bad_plugin_case(row_id, *args):
    def run(t):
        t.install_plugin("cnnkit-bad", BAD_MODELS)
        return t.train(*args)

    CASES[row_id] = run


bad_plugin_case("plugin-dataset-exit", "--data", "exit-data")
bad_plugin_case("plugin-dataset-none", "--data", "none-data")
bad_plugin_case("plugin-strategy-none", "--strategy", "none-strat")
bad_plugin_case("plugin-augment-not-callable", "--augment", "int-aug")
bad_plugin_case("plugin-missing-reference", "--model", "ghost-net")
bad_plugin_case("plugin-initializer-not-callable", "--init", "int-init")


def listed_with_plugin(row_id, name, source, *args):
    def run(t):
        t.install_plugin(name, source)
        return t.cli(*args)

    CASES[row_id] = run


def one_model(line):
    return f"from cnnkit import hookimpl\n\n@hookimpl\ndef register_models(register):\n    {line}\n"


listed_with_plugin("plugin-api-mismatch", "cnnkit-future", "CNNKIT_API = '>=2'\n" + one_model('register("f-net", "m:f")'),
                   "models")
listed_with_plugin("plugin-api-garbled", "cnnkit-garbled", "CNNKIT_API = '1.0'\n" + one_model('register("g-net", "m:f")'),
                   "plugins")
listed_with_plugin("plugin-unknown-metadata", "cnnkit-typo",
                   one_model('register("typo-net", "m:f", input_sise=(1, 8, 8))'), "plugins")
listed_with_plugin("plugin-bad-reference", "cnnkit-dotted", one_model('register("dot-net", "cnnkit_dotted.build")'), "plugins")
listed_with_plugin("plugin-wrapper-no-yield", "cnnkit-nowrap",
                   "from cnnkit import hookimpl\n\n@hookimpl(wrapper=True)\ndef register_models(register):\n"
                   "    if False:\n        yield\n", "plugins")


@case("plugins-env-unknown")
def _(t):
    t.monkeypatch.setenv("CNNKIT_PLUGINS", "lenet")
    return t.cli("models")


@case("plugins-env-disabled")
def _(t):
    t.monkeypatch.setenv("CNNKIT_DISABLE_PLUGINS", "lenet5")
    return t.train("--model", "lenet5")


@case("plugin-prints")
def _(t):
    t.install_plugin("cnnkit-chatty", "print('hello from a plugin')\n")
    result = t.cli("plugins", "--json")
    assert "cnnkit-chatty" in [p["name"] for p in json.loads(result.out)]
    return result


@case("plugin-bad-name")
def _(t):
    t.install_plugin("cnnkit-spaced", """
        from cnnkit import hookimpl

        @hookimpl
        def register_models(register):
            register("sp ace", lambda **kw: None)
    """)
    return t.cli("plugins")


def help_with_plugin(row_id, name, source):
    def run(t):
        t.install_plugin(name, source)
        result = t.cli("--help")
        assert "train" in result.out, "the help is still shown"
        return result

    CASES[row_id] = run


help_with_plugin("plugin-base-exception", "cnnkit-cancel", "import asyncio\nraise asyncio.CancelledError('shutting down')\n")
help_with_plugin("plugin-sys-exit", "cnnkit-quitter", "import sys\nsys.exit(3)\n")


@case("plugin-same-entry-point")
def _(t):
    source = """
        from cnnkit import hookimpl

        @hookimpl
        def register_models(register):
            register("{name}", lambda **kw: None, input_size=(1, 8, 8))
    """
    t.install_plugin("cnnkit-first", source.replace("{name}", "first-net"), entry_point="shared")
    t.install_plugin("cnnkit-second", source.replace("{name}", "second-net"), entry_point="shared")
    return t.cli("plugins")


@case("plugin-misspelt-hook")
def _(t):
    t.install_plugin("cnnkit-typo", "from cnnkit import hookimpl\n\n@hookimpl\ndef register_model(register):\n    pass\n")
    return t.cli("plugins")


@case("plugins-new-exists")
def _(t):
    t.monkeypatch.chdir(t.tmp)
    (t.tmp / "cnnkit-mine").mkdir()
    return t.cli("plugins", "new", "cnnkit-mine", "--kind", "model")


@case("plugins-new-bad-name")
def _(t):
    t.monkeypatch.chdir(t.tmp)
    return t.cli("plugins", "new", "3d-net", "--kind", "model")


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory):
    """A finished one-epoch run: every case runs beside a copy of it and must leave it alone."""
    from cnnkit.options import TrainConfig
    from cnnkit.recipe.run import train

    out = tmp_path_factory.mktemp("earlier")
    train(TrainConfig(epochs=1, out=str(out), name="earlier", quiet=True))
    return out / "earlier"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_every_documented_row_has_a_case_and_every_case_a_row():
    assert len(ROWS) >= 60
    assert sorted(ROWS) == sorted(CASES)


@pytest.mark.parametrize("row_id", [pytest.param(row, marks=pytest.mark.slow) if row in SLOW_ROWS else row for row in sorted(ROWS)])
def test_documented_answer(row_id, run_cli, install_plugin, tmp_path, monkeypatch, capsys, earlier_run):
    answer, exit_code = ROWS[row_id]
    out = tmp_path / "runs"
    shutil.copytree(earlier_run, out / "earlier")
    before = snapshot(out / "earlier")

    def cli(*args):
        return run_cli(*[arg.replace("{out}", str(out)) for arg in args])

    def train(*args):
        defaults = [] if "--resume" in args else ["--out", str(out), "--quiet"]
        if "--name" not in args and "--resume" not in args:
            defaults += ["--name", "again"]
        return cli("train", *args, *defaults)

    helpers = SimpleNamespace(cli=cli, train=train, tmp=tmp_path, out=out, monkeypatch=monkeypatch,
                              install_plugin=install_plugin, capsys=capsys)
    result = CASES[row_id](helpers)
    pattern = re.escape(answer).replace("…", ".*?")
    assert result.code == exit_code, result.err
    assert re.search(pattern, result.out + result.err), f"{answer!r} not in:\n{result.out}{result.err}"
    if row_id in WHOLE_STDERR:
        assert re.fullmatch(pattern, result.err.strip()), result.err
    assert snapshot(out / "earlier") == before, "a run written earlier was changed"
