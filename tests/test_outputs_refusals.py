"""What evaluate, predict, export, plot and augment preview write: a refused write is one plain
line naming the path and the reason (exit 1), nothing written earlier is replaced without
``--force``, heat maps never go into training data, and a file that is not a checkpoint is named
for what it is."""

import errno
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

CLASSES = [str(d) for d in range(10)]


@pytest.fixture
def checkpoint(tmp_path):
    """A cnnkit checkpoint of mnist-cnn for the digits, written as training writes one (random
    weights: these tests are about files, not accuracy)."""
    from cnnkit.engine.checkpoint import save_checkpoint
    from cnnkit.plugins import registry

    torch.manual_seed(0)
    model = registry("models").get("mnist-cnn").create(num_classes=10, in_channels=1)
    run = tmp_path / "run"
    run.mkdir()
    save_checkpoint(run / "best.pt", {
        "model": {"name": "mnist-cnn", "kwargs": {"num_classes": 10, "in_channels": 1}}, "classes": CLASSES,
        "input_size": [1, 28, 28], "normalization": {"mean": [0.3], "std": [0.3]}, "state_dict": model.state_dict(),
        "config": {"data": "digits", "val_split": 0.2, "seed": 0}})
    (run / "config.json").write_text('{"data": "digits"}\n')
    (run / "metrics.csv").write_text("epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds\n1,1.0,0.5,0.9,0.6,0.01,1\n")
    Image.new("L", (28, 28), 90).save(tmp_path / "x.png")
    return run


@pytest.fixture
def locked(tmp_path, monkeypatch):
    """A folder nothing can be written into (EACCES, as a read-only folder gives a user; the tests
    run as root, where permissions do not stop writes)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    real_mkdir, real_mkstemp = Path.mkdir, tempfile.mkstemp

    def denied(path):
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    def mkdir(self, *args, **kwargs):
        if folder in Path(self).parents:
            raise denied(self)
        return real_mkdir(self, *args, **kwargs)

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == folder:
            raise denied(dir)
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    return folder


def one_plain_line(result, code):
    assert result.code == code, result.err
    lines = result.err.strip().splitlines()
    assert len([line for line in lines if line.startswith("Error:")]) == 1 and "Traceback" not in result.err, result.err
    assert "Errno" not in result.err and "enforce fail" not in result.err, result.err
    return next(line for line in lines if line.startswith("Error:"))


@pytest.mark.parametrize(("command", "answer"), [
    (["evaluate", "{run}", "--out", "{locked}/report"],
     "Error: Cannot create the folder '{locked}/report': Permission denied."),
    (["predict", "{run}", "{image}", "--cam", "{locked}/cams"],
     "Error: Cannot create the folder '{locked}/cams': Permission denied."),
    (["predict", "{run}", "{image}", "--cam", "{locked}"],
     "Error: Cannot write '{locked}/x.cam.png': Permission denied. The files written before are kept."),
    (["export", "{run}", "--format", "torchscript", "--out", "{locked}/m.torchscript.pt"],
     "Error: Cannot write '{locked}/m.torchscript.pt': Permission denied. The files written before are kept."),
    (["export", "{run}", "--format", "safetensors", "--out", "{locked}/m.safetensors"],
     "Error: Cannot write '{locked}/m.safetensors': Permission denied. The files written before are kept."),
    (["plot", "{run}", "{run}", "--out", "{locked}/c.png"],
     "Error: Cannot write '{locked}/c.png': Permission denied. The files written before are kept."),
    (["augment", "preview", "--augment", "hflip", "--image", "{image}", "--size", "16", "--out", "{locked}/p.png"],
     "Error: Cannot write '{locked}/p.png': Permission denied. The files written before are kept."),
])
def test_a_refused_write_is_one_plain_line(run_cli, checkpoint, locked, command, answer):
    fill = {"run": checkpoint, "locked": locked, "image": checkpoint.parent / "x.png"}
    result = run_cli(*[part.format(**fill) for part in command])
    assert one_plain_line(result, 1) == answer.format(**fill)
    assert list(locked.iterdir()) == []


def test_export_writes_whole_files_or_nothing(run_cli, checkpoint, monkeypatch, tmp_path):
    """An export that fails while writing leaves the earlier export as it was (written to a
    temporary file, then renamed), like every checkpoint."""
    first = run_cli("export", str(checkpoint), "--format", "safetensors")
    assert first.code == 0, first.err
    before = (checkpoint / "model.safetensors").read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    again = run_cli("export", str(checkpoint), "--format", "safetensors", "--force")
    assert one_plain_line(again, 1).endswith("model.safetensors': no space left on the device. The files written before are kept.")
    assert (checkpoint / "model.safetensors").read_bytes() == before


@pytest.mark.slow
def test_preview_plot_and_export_never_replace_a_file_without_force(run_cli, checkpoint, tmp_path):
    image = str(checkpoint.parent / "x.png")
    preview = ["augment", "preview", "--augment", "hflip", "--image", image, "--size", "16"]
    for command in ([*preview, "--out", str(tmp_path / "p.png")],
                    ["plot", str(checkpoint), str(checkpoint), "--out", str(tmp_path / "c.png")],
                    ["plot", str(checkpoint), "--out", str(tmp_path / "one.png")],
                    ["export", str(checkpoint), "--format", "safetensors"]):
        target = Path(command[-1]) if command[0] != "export" else checkpoint / "model.safetensors"
        assert run_cli(*command).code == 0 and target.is_file()
        target.write_bytes(b"mine")
        refused = run_cli(*command)
        assert one_plain_line(refused, 2) == f"Error: --out '{target}' exists; pass --force to replace it, or choose another path."
        assert target.read_bytes() == b"mine"
        forced = run_cli(*command, "--force")
        assert forced.code == 0 and target.read_bytes() != b"mine", forced.err


def test_plot_of_one_run_still_redraws_its_own_curves(run_cli, checkpoint):
    (checkpoint / "curves.png").write_bytes(b"old")
    result = run_cli("plot", str(checkpoint))
    assert result.code == 0 and Image.open(checkpoint / "curves.png").size[0] > 500


@pytest.mark.slow
def test_a_second_evaluate_writes_a_numbered_folder(run_cli, checkpoint):
    first = run_cli("evaluate", str(checkpoint), "--split", "val")
    assert first.code == 0, first.err
    before = {p.name: p.read_bytes() for p in (checkpoint / "eval-val").iterdir()}
    (checkpoint / "eval-val" / "notes.txt").write_text("mine")
    second = run_cli("evaluate", str(checkpoint), "--split", "val")
    assert second.code == 0, second.err
    assert second.out.splitlines()[-1] == f"wrote metrics.json, per_class.csv, confusion.png, top_losses.png in {checkpoint / 'eval-val-2'}"
    assert {p.name: p.read_bytes() for p in (checkpoint / "eval-val").iterdir() if p.name != "notes.txt"} == before
    again = run_cli("evaluate", str(checkpoint), "--split", "val", "--out", str(checkpoint / "eval-val"))
    assert one_plain_line(again, 2).startswith(f"Error: --out '{checkpoint / 'eval-val'}' already holds a report (metrics.json, per_class.csv")


def two_classes(root: Path) -> None:
    for name, value in (("dark", 20), ("light", 230)):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), value + i, np.uint8)).save(root / name / f"{i}.png")


def folder_checkpoint(checkpoint: Path, data: Path) -> Path:
    """The checkpoint as if trained on the image folder ``data`` (classes dark and light)."""
    from cnnkit.engine.checkpoint import load_checkpoint, save_checkpoint
    from cnnkit.plugins import registry

    saved = load_checkpoint(checkpoint / "best.pt")
    model = registry("models").get("mnist-cnn").create(num_classes=2, in_channels=1)
    saved.update(classes=["dark", "light"], state_dict=model.state_dict(), config={"data": str(data)},
                 model={"name": "mnist-cnn", "kwargs": {"num_classes": 2, "in_channels": 1}})
    del saved["format"], saved["format_version"]
    save_checkpoint(checkpoint / "folder.pt", saved)
    return checkpoint / "folder.pt"


@pytest.mark.parametrize(("cam", "answer"), [
    ("data/dark/cams", "Error: --cam '{tmp}/data/dark/cams' is inside '{tmp}/data', the training data of this checkpoint"),
    ("data", "Error: --cam '{tmp}/data' is '{tmp}/data', the training data of this checkpoint"),
    ("copy/light",
     "Error: --cam '{tmp}/copy/light' is inside '{tmp}/copy', which holds image folders named after this model's classes"),
])
def test_heat_maps_never_go_into_training_data(run_cli, checkpoint, tmp_path, cam, answer):
    two_classes(tmp_path / "data")
    two_classes(tmp_path / "copy")
    trained = folder_checkpoint(checkpoint, tmp_path / "data")
    before = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    result = run_cli("predict", str(trained), str(tmp_path / "data" / "dark"), "--cam", str(tmp_path / cam))
    assert one_plain_line(result, 2).startswith(answer.format(tmp=tmp_path))
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == before
    elsewhere = run_cli("predict", str(trained), str(tmp_path / "data" / "dark"), "--cam", str(tmp_path / "cams"))
    assert elsewhere.code == 0 and len(list((tmp_path / "cams").iterdir())) == 3


@pytest.mark.parametrize(("out", "answer"), [
    ("data/dark/curves.png", "Error: --out '{tmp}/data/dark/curves.png' is inside '{tmp}/data', the training data of run '{run}'"),
    ("link/light/curves.png", "Error: --out '{tmp}/link/light/curves.png' is inside '{tmp}/data', the training data of run '{run}'"),
    ("data/curves.png", "Error: --out '{tmp}/data/curves.png' is inside '{tmp}/data', the training data of run '{run}'"),
])
def test_plot_never_writes_into_the_runs_training_data(run_cli, checkpoint, tmp_path, out, answer):
    """The curves written into a class folder were read as a training image by the next run."""
    two_classes(tmp_path / "data")
    (tmp_path / "link").symlink_to(tmp_path / "data")
    (checkpoint / "config.json").write_text(f'{{"data": "{tmp_path / "data"}"}}\n')
    before = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    for runs in ([str(checkpoint)], [str(checkpoint), str(checkpoint)]):
        result = run_cli("plot", *runs, "--out", str(tmp_path / out))
        assert one_plain_line(result, 2) == answer.format(tmp=tmp_path, run=checkpoint) + (
            ": images written there would be read as training images. Choose a path outside it.")
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == before
    assert run_cli("plot", str(checkpoint), "--out", str(tmp_path / "curves.png")).code == 0


@pytest.mark.parametrize("given", ["{tmp}/data", "{tmp}/link", "./data/"])
def test_preview_never_writes_into_the_data_it_reads(run_cli, tmp_path, monkeypatch, given):
    """The preview sheet written into a class folder was read as a training image by the next run."""
    two_classes(tmp_path / "data")
    (tmp_path / "link").symlink_to(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    given = given.format(tmp=tmp_path)
    data = given.removeprefix(f"{tmp_path}/")
    result = run_cli("augment", "preview", "--data", given, "--augment", "hflip", "--size", "16",
                     "--out", str(tmp_path / data / "light" / "p.png"))
    assert one_plain_line(result, 2) == (
        f"Error: --out '{tmp_path / data / 'light' / 'p.png'}' is inside '{tmp_path / 'data'}', the image folder --data "
        f"{given} reads: images written there would be read as training images. Choose a path outside it.")
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == before
    assert run_cli("augment", "preview", "--data", given, "--augment", "hflip", "--size", "16",
                   "--out", str(tmp_path / "p.png")).code == 0


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_plot_and_preview_refuse_a_folder_as_out_alike(run_cli, checkpoint, tmp_path, force):
    """plot used to exit 1 ("Cannot write ...: Is a directory") where preview exits 2."""
    (tmp_path / "d.png").mkdir()
    plot = run_cli("plot", str(checkpoint), "--out", str(tmp_path / "d.png"), *force)
    assert one_plain_line(plot, 2) == f"Error: --out '{tmp_path / 'd.png'}' is a folder; name a file to write."
    preview = run_cli("augment", "preview", "--augment", "hflip", "--out", str(tmp_path / "d.png"), *force)
    assert preview.code == 2 and "is a directory" in preview.err
    assert not any((tmp_path / "d.png").iterdir())


@pytest.mark.parametrize(("given", "answer"), [
    ("run/config.json", "Error: '{tmp}/run/config.json' is a JSON file, not a checkpoint; pass the run directory or best.pt."),
    ("x.png", "Error: '{tmp}/x.png' is a PNG image, not a checkpoint; pass the run directory or best.pt."),
    ("runs/nope", "Error: '{tmp}/runs/nope' does not exist; pass a run directory or its best.pt."),
])
@pytest.mark.parametrize("command", [["evaluate"], ["predict", "{image}"], ["export", "--format", "safetensors"]])
def test_what_is_not_a_checkpoint_is_named_as_a_usage_error(run_cli, checkpoint, tmp_path, given, answer, command):
    args = [command[0], str(tmp_path / given), *[part.format(image=tmp_path / "x.png") for part in command[1:]]]
    assert one_plain_line(run_cli(*args), 2) == answer.format(tmp=tmp_path)


def test_torchscript_export_shows_no_torch_future_warnings(run_cli, checkpoint, monkeypatch):
    """torch.jit's own three deprecation warnings are silenced; any other warning still shows."""
    real_trace = torch.jit.trace

    def trace(*args, **kwargs):
        warnings.warn("another deprecation", FutureWarning, stacklevel=2)
        return real_trace(*args, **kwargs)

    monkeypatch.setattr(torch.jit, "trace", trace)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = run_cli("export", str(checkpoint), "--format", "torchscript")
    assert result.code == 0, result.err
    assert [str(w.message) for w in seen if issubclass(w.category, FutureWarning)] == ["another deprecation"]
    assert "cnnkit: note: PyTorch deprecates TorchScript" in result.err
