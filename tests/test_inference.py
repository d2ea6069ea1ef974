"""``cnnkit evaluate`` and ``cnnkit predict`` on checkpoints from ``cnnkit train``, and every
command that reads a checkpoint refusing one that would run code."""

import csv
import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    from cnnkit.options import TrainConfig
    from cnnkit.plugins import reset_host
    from cnnkit.recipe.run import train

    reset_host()
    out = tmp_path_factory.mktemp("runs")
    train(TrainConfig(epochs=3, out=str(out), name="d", quiet=True), bars=False)
    reset_host()
    return out / "d"


@pytest.mark.slow
def test_evaluate_reproduces_the_runs_test_accuracy_and_writes_its_files(run_cli, digits_run, tmp_path):
    result = run_cli("evaluate", str(digits_run), "--json", "--out", str(tmp_path / "eval"), "--normalize")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    best = torch.load(digits_run / "best.pt", weights_only=True)
    assert report["accuracy"] == pytest.approx(best["metrics"]["test"]["acc"], abs=1e-6)
    assert report["images"] == 269 and report["top5"] >= report["accuracy"]
    confusion = torch.tensor(report["confusion"])
    assert confusion.sum() == 269 and confusion.diag().sum() / 269 == pytest.approx(report["accuracy"])
    with open(tmp_path / "eval" / "per_class.csv") as table:
        rows = list(csv.DictReader(table))
    assert [r["class"] for r in rows] == [str(d) for d in range(10)]
    assert sum(int(r["support"]) for r in rows) == 269
    for name in ("confusion.png", "top_losses.png"):
        assert Image.open(tmp_path / "eval" / name).size[0] > 300
    text = run_cli("evaluate", str(digits_run / "best.pt"), "--split", "val")
    assert text.code == 0 and text.out.startswith("digits val: 269 images, accuracy ")


@pytest.mark.slow
def test_predict_reads_images_as_the_model_was_trained_and_reports_unreadable_ones(run_cli, digits_run, tmp_path):
    from cnnkit.data.digits import load_digits

    test = load_digits().test
    for i in range(20):
        array = test.images[i, 0].numpy()
        Image.fromarray(np.stack([array] * 3, -1)).resize((56, 56)).save(tmp_path / f"{i:02d}-{int(test.labels[i])}.png")
    (tmp_path / "broken.png").write_bytes(b"no")
    result = run_cli("predict", str(digits_run), str(tmp_path), "--format", "json", "--topk", "2")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert len(rows) == 21 and rows[0]["file"].endswith("00-" + str(int(test.labels[0])) + ".png")
    broken = next(r for r in rows if r["file"].endswith("broken.png"))
    assert broken["error"].startswith("not an image")
    right = [r["predictions"][0]["class"] == r["file"].rsplit("-", 1)[1][0] for r in rows if "predictions" in r]
    assert sum(right) >= 16 and all(len(r["predictions"]) == 2 for r in rows if "predictions" in r)
    table = run_cli("predict", str(digits_run), str(tmp_path / "00-" f"{int(test.labels[0])}.png"))
    assert table.code == 0 and "%" in table.out.splitlines()[1]
    none = run_cli("predict", str(digits_run), str(tmp_path / "broken.png"))
    assert none.code == 1 and "unreadable: not an image" in none.out


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("command", [
    ["evaluate", "{evil}"],
    ["predict", "{evil}", "{image}"],
    ["export", "{evil}", "--format", "torchscript"],
    ["finetune", "--backbone", "{evil}", "--data", "{data}"],
    ["finetune", "--backbone", "resnet18", "--weights", "{evil}", "--data", "{data}"],
    ["train", "--resume", "{run}"],
])
def test_a_checkpoint_that_would_run_code_is_refused_by_every_command(run_cli, tmp_path, image_folder, command):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": "cnnkit.checkpoint", "state_dict": Payload(str(marker))}))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "last.pt").write_bytes(evil.read_bytes())
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    args = [a.format(evil=evil, image=tmp_path / "x.png", data=image_folder, run=run) for a in command]
    result = run_cli(*args)
    assert result.code in (1, 2) and not marker.exists(), "nothing in the file ran"
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1, result.err


@pytest.mark.slow
def test_a_checkpoint_of_another_class_count_gets_a_clear_message(run_cli, digits_run, tmp_path):
    saved = torch.load(digits_run / "best.pt", weights_only=True)
    saved["model"]["kwargs"]["num_classes"] = 7
    torch.save(saved, tmp_path / "other.pt")
    result = run_cli("evaluate", str(tmp_path / "other.pt"))
    assert result.code == 1
    assert "do not fit model 'mnist-cnn' as this cnnkit builds it (shapes differ for " in result.err
    del saved["normalization"]
    torch.save(saved, tmp_path / "old.pt")
    old = run_cli("predict", str(tmp_path / "old.pt"), str(tmp_path))
    assert old.code == 1 and "lacks normalization: it was written by cnnkit" in old.err


@pytest.mark.parametrize("form", ["onnx", "torchscript", "safetensors"])
@pytest.mark.slow
def test_export_loads_the_export_back_and_checks_it_against_pytorch(run_cli, digits_run, tmp_path, form):
    out = tmp_path / f"model{ {'onnx': '.onnx', 'torchscript': '.torchscript.pt', 'safetensors': '.safetensors'}[form] }"
    result = run_cli("export", str(digits_run), "--format", form, "--out", str(out))
    assert result.code == 0, result.err
    assert result.out.startswith(f"wrote {out}; checked with ") and out.stat().st_size > 100_000
    diff = float(result.out.rsplit(" ", 1)[1])
    assert diff <= 1e-4
    if form == "torchscript":
        from cnnkit.data.digits import load_digits

        best = torch.load(digits_run / "best.pt", weights_only=True)
        model = torch.jit.load(str(out))
        test = load_digits().test
        mean, std = (torch.tensor(best["normalization"][k]).view(1, -1, 1, 1) for k in ("mean", "std"))
        accuracy = (model((test.images.float() / 255 - mean) / std).argmax(1) == test.labels).float().mean().item()
        assert accuracy == pytest.approx(best["metrics"]["test"]["acc"], abs=1e-6)


@pytest.mark.slow
def test_a_folder_trained_resnet18_evaluates_predicts_and_exports(run_cli, image_folder, tmp_path):
    train = run_cli("train", "--model", "resnet18", "--image-size", "32", "--data", str(image_folder), "--epochs", "2",
                    "--out", str(tmp_path), "--name", "r", "--quiet")
    assert train.code == 0, train.err
    report = json.loads(run_cli("evaluate", str(tmp_path / "r"), "--split", "val", "--json").out)
    best = torch.load(tmp_path / "r" / "best.pt", weights_only=True)
    assert report["images"] == 8 and report["top5"] is None
    assert report["accuracy"] == pytest.approx(best["metrics"]["val_acc"], abs=1e-6), "read as training read it"
    no_test = run_cli("evaluate", str(tmp_path / "r"))
    assert no_test.code == 2 and "has no test split; pass --split val." in no_test.err
    predicted = json.loads(run_cli("predict", str(tmp_path / "r"), str(image_folder / "val"), "--format", "json").out)
    assert len(predicted) == 8 and all(p["predictions"][0]["class"] in ("dark", "light") for p in predicted)
    for form in ("torchscript", "onnx"):
        result = run_cli("export", str(tmp_path / "r"), "--format", form)
        assert result.code == 0 and "largest difference to PyTorch" in result.out, result.err


@pytest.mark.slow
def test_plot_redraws_a_run_and_compares_several(run_cli, digits_run, tmp_path):
    (digits_run / "curves.png").unlink()
    assert run_cli("plot", str(digits_run)).code == 0 and (digits_run / "curves.png").is_file()
    result = run_cli("plot", str(digits_run), str(digits_run), "--out", str(tmp_path / "c.png"))
    assert result.code == 0 and Image.open(tmp_path / "c.png").size[0] > 500
    empty = run_cli("plot", str(tmp_path))
    assert empty.code == 2 and "has no metrics.csv" in empty.err


@pytest.mark.slow
def test_the_class_activation_map_looks_where_the_digit_is(digits_run):
    """A digit shrunk into the top-left quarter of a black image: the heat is there."""
    import torch.nn.functional as F

    from cnnkit.data.digits import load_digits
    from cnnkit.inference.cam import class_activation
    from cnnkit.inference.model import load_trained

    trained = load_trained(digits_run)
    images = load_digits().test.images[:12].float()
    canvas = torch.zeros(12, 1, 28, 28)
    canvas[..., :14, :14] = F.interpolate(images, size=(14, 14), mode="bilinear")
    x = trained.normalise(canvas.round().to(torch.uint8))
    cams = class_activation(trained.model, x, trained.model(x).argmax(1))
    assert cams.shape == (12, 28, 28) and cams.max() <= 1 and cams.min() >= 0
    top_left = cams[:, :14, :14].sum(dim=(1, 2))
    assert (top_left > cams.sum(dim=(1, 2)) / 2).all(), "more than half the heat in the digit's quarter"


@pytest.mark.parametrize("model", ["resnet20", "alexnet-2012", "timm/resnet10t", "mobilenet_v3_small"])
@pytest.mark.slow
def test_class_activation_maps_work_for_every_convolutional_family(model):
    from cnnkit.inference.cam import class_activation
    from cnnkit.plugins import registry

    net = registry("models").get(model).create(num_classes=3, in_channels=3).eval()
    size = 227 if model == "alexnet-2012" else 64
    cams = class_activation(net, torch.randn(2, 3, size, size), torch.tensor([0, 2]))
    assert cams.shape == (2, size, size) and torch.isfinite(cams).all()


@pytest.mark.slow
def test_predict_writes_a_cam_per_image(run_cli, digits_run, tmp_path):
    Image.new("L", (28, 28), 30).save(tmp_path / "a.png")
    result = run_cli("predict", str(digits_run), str(tmp_path / "a.png"), "--cam", str(tmp_path / "cams"), "--format", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out)[0]["cam"] == str(tmp_path / "cams" / "a.cam.png")
    assert Image.open(tmp_path / "cams" / "a.cam.png").size[0] > 300


@pytest.mark.slow
def test_export_never_overwrites_a_checkpoint_and_checks_its_suffix(run_cli, digits_run, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(digits_run, run)
    before = (run / "best.pt").read_bytes()
    over = run_cli("export", str(run), "--format", "torchscript", "--out", str(run / "best.pt"))
    assert over.code == 2 and "would overwrite a checkpoint" in over.err and (run / "best.pt").read_bytes() == before
    wrong = run_cli("export", str(run), "--format", "safetensors", "--out", str(tmp_path / "m.onnx"))
    assert wrong.code == 2 and "must end in .safetensors" in wrong.err


@pytest.mark.slow
def test_damaged_or_newer_checkpoints_and_empty_inputs_are_named(run_cli, digits_run, tmp_path):
    saved = torch.load(digits_run / "best.pt", weights_only=True)
    torch.save({**saved, "classes": saved["classes"][:5]}, tmp_path / "five.pt")
    five = run_cli("predict", str(tmp_path / "five.pt"), str(tmp_path))
    assert five.code == 1 and "lists 5 classes but its model gives 10 scores" in five.err
    torch.save({**saved, "format_version": 99}, tmp_path / "new.pt")
    assert "written by a newer cnnkit" in run_cli("evaluate", str(tmp_path / "new.pt")).err
    (tmp_path / "empty").mkdir()
    assert "has no best.pt" in run_cli("evaluate", str(tmp_path / "empty")).err
    nothing = run_cli("predict", str(digits_run), str(tmp_path / "empty"))
    assert nothing.code == 2 and "No images found in" in nothing.err


@pytest.mark.slow
def test_same_named_images_get_their_own_cam_and_same_named_runs_their_own_line(run_cli, digits_run, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.new("L", (28, 28), 40 if folder == "a" else 200).save(tmp_path / folder / "x.png")
    rows = json.loads(run_cli("predict", str(digits_run), str(tmp_path / "a"), str(tmp_path / "b"), "--cam",
                              str(tmp_path / "cams"), "--format", "json").out)
    assert sorted(r["cam"] for r in rows) == [str(tmp_path / "cams" / "x-2.cam.png"), str(tmp_path / "cams" / "x.cam.png")]
