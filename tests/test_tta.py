"""Test-time augmentation in ``cnnkit evaluate`` and ``cnnkit predict`` (``--tta``): the averaged
probabilities against a hand computation over the views, flip on a mirror-symmetric picture, the
``alexnet-2012`` default, the JSON report, and the refusals."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

SIDE, READ = 28, 32
"""mnist-cnn takes 28x28; a checkpoint reading the centre 0.875 is cropped from 32x32 pictures."""


def checkpoint(path, crop_fraction=1.0, augment=""):
    """An untrained mnist-cnn for the shipped digits, saved as ``cnnkit train`` saves one (seeded)."""
    from cnnkit.engine.checkpoint import save_checkpoint
    from cnnkit.plugins import registry

    torch.manual_seed(0)
    model = registry("models").get("mnist-cnn").create(num_classes=10, in_channels=1)
    save_checkpoint(path, {
        "cnnkit_version": "0.1.0", "model": {"name": "mnist-cnn", "kwargs": {"num_classes": 10, "in_channels": 1}},
        "classes": [str(d) for d in range(10)], "input_size": [1, SIDE, SIDE],
        "normalization": {"mean": [0.3], "std": [0.3]},
        "preprocessing": {"crop_fraction": crop_fraction, "interpolation": "bilinear"},
        "config": {"data": "digits", "seed": 0, "val_split": 0.2, "augment": augment},
        "state_dict": model.state_dict(),
    })
    return path


@pytest.fixture(scope="module")
def cropped(tmp_path_factory):
    """A checkpoint whose evaluation reads the centre 0.875 of each picture (224 of 256)."""
    return checkpoint(tmp_path_factory.mktemp("tta") / "cropped.pt", crop_fraction=0.875)


def by_hand(trained, images):
    """Mean softmax over the ten views, each cut with plain slicing: four corners, the centre, mirrored."""
    edge, centre = READ - SIDE, (READ - SIDE) // 2
    corners = [(0, 0), (0, edge), (edge, 0), (edge, edge), (centre, centre)]
    crops = [images[..., top:top + SIDE, left:left + SIDE] for top, left in corners]
    views = crops + [crop.flip(-1) for crop in crops]
    with torch.inference_mode():
        return torch.stack([trained.model(trained.normalise(v)).softmax(1) for v in views]).mean(0)


def test_ten_crop_averages_the_softmax_of_the_ten_views(cropped):
    from cnnkit.inference.model import load_trained
    from cnnkit.inference.tta import averaged_probabilities, read_size

    trained = load_trained(cropped)
    assert read_size(trained, "ten-crop") == ((READ, READ), 1.0)
    images = torch.randint(0, 256, (4, 1, READ, READ), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    with torch.inference_mode():
        got = averaged_probabilities(trained, images, "ten-crop")
        five = averaged_probabilities(trained, images, "five-crop")
    assert torch.allclose(got, by_hand(trained, images), atol=1e-6)
    assert torch.allclose(got.sum(1), torch.ones(4), atol=1e-6), "an average of distributions is one"
    assert not torch.allclose(got, five, atol=1e-4), "the mirrors count"


@pytest.mark.slow  # evaluates the digits' test split through the CLI, figures and all
def test_evaluate_ten_crop_predicts_the_hand_averaged_class_and_reports_its_tta(run_cli, cropped, tmp_path):
    from cnnkit.contracts._data import DataRequest
    from cnnkit.data.resolve import resolve_data
    from cnnkit.inference.evaluate import predictions, read_split
    from cnnkit.inference.model import load_trained

    result = run_cli("evaluate", str(cropped), "--tta", "ten-crop", "--json", "--out", str(tmp_path / "ten"))
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["tta"] == "ten-crop"

    trained = load_trained(cropped)
    test = resolve_data("digits").create(DataRequest(image_size=(READ, READ), channels=1, val_split=0.2, seed=0)).test
    images, labels = test.images, test.labels
    _, part = read_split(trained, "", "test", "ten-crop")
    assert torch.equal(part.images, images), "the crops are cut from the whole picture at 32x32"
    expected = by_hand(trained, images).argmax(1)
    confusion = torch.bincount(labels * 10 + expected, minlength=100).view(10, 10)
    assert report["confusion"] == confusion.tolist()
    assert report["accuracy"] == pytest.approx((expected == labels).float().mean().item())

    _, centre = read_split(trained, "", "test")
    probabilities, _, shown = predictions(trained, centre)
    assert (probabilities.argmax(1) != expected).any(), "averaging the views changes some predictions"
    _, _, gallery = predictions(trained, part, tta="ten-crop")
    assert gallery.shape == shown.shape, "the gallery shows the centre view"


@pytest.mark.slow  # evaluates the digits' test split through the CLI, figures and all
def test_an_alexnet_2012_checkpoint_evaluates_on_ten_crops_unless_told_otherwise(run_cli, tmp_path):
    paper = checkpoint(tmp_path / "paper.pt", crop_fraction=0.875, augment="alexnet-2012, mixup(alpha=0.2)")
    result = run_cli("evaluate", str(paper), "--out", str(tmp_path / "a"))
    assert result.code == 0, result.err
    assert "trained with --augment alexnet-2012: evaluated on ten-crop as the paper did" in result.err
    assert ", ten-crop TTA (probabilities averaged over its views)" in result.out.splitlines()[0]
    off = run_cli("evaluate", str(paper), "--tta", "none", "--json", "--out", str(tmp_path / "b"))
    assert off.code == 0 and json.loads(off.out)["tta"] == "none" and "alexnet-2012" not in off.err


def test_flip_on_a_mirror_symmetric_picture_equals_no_tta(run_cli, cropped, tmp_path):
    half = np.random.default_rng(0).integers(0, 256, (SIDE, SIDE // 2), dtype=np.uint8)
    Image.fromarray(np.concatenate([half, half[:, ::-1]], axis=1)).save(tmp_path / "mirror.png")
    answers = {}
    for tta in ("none", "flip"):
        result = run_cli("predict", str(cropped), str(tmp_path / "mirror.png"), "--format", "json", "--topk", "10", "--tta", tta)
        assert result.code == 0, result.err
        answers[tta] = {p["class"]: p["probability"] for p in json.loads(result.out)[0]["predictions"]}
    assert answers["flip"] == pytest.approx(answers["none"], abs=1e-6)


def test_predict_with_crops_reads_the_larger_picture_and_takes_heat_maps_on_the_centre(run_cli, cropped, tmp_path):
    from cnnkit.inference.model import load_trained

    picture = np.random.default_rng(2).integers(0, 256, (READ, READ), dtype=np.uint8)
    Image.fromarray(picture).save(tmp_path / "x.png")
    result = run_cli("predict", str(cropped), str(tmp_path / "x.png"), "--format", "json", "--topk", "10", "--tta", "ten-crop",
                     "--cam", str(tmp_path / "cams"))
    assert result.code == 0, result.err
    row = json.loads(result.out)[0]
    expected = by_hand(load_trained(cropped), torch.from_numpy(picture)[None, None])[0]
    assert {p["class"]: p["probability"] for p in row["predictions"]} == pytest.approx(
        {str(c): p for c, p in enumerate(expected.tolist())}, abs=1e-6)
    assert Image.open(row["cam"]).size[0] > 0


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_misspelt_tta_is_a_usage_error_with_the_closest_mode(run_cli, cropped, tmp_path, command):
    result = run_cli(command, str(cropped), *([str(tmp_path)] if command == "predict" else []), "--tta", "ten-crops")
    assert result.code == 2
    assert ("Error: Invalid value for '--tta': 'ten-crops' is not one of 'none', 'flip', 'five-crop', 'ten-crop'. "
            "Did you mean 'ten-crop'?") in result.err


def test_crops_of_a_checkpoint_that_reads_whole_pictures_are_refused(run_cli, tmp_path):
    whole = checkpoint(tmp_path / "whole.pt")
    Image.new("L", (SIDE, SIDE)).save(tmp_path / "x.png")
    for args in (["evaluate", str(whole)], ["predict", str(whole), str(tmp_path / "x.png")]):
        result = run_cli(*args, "--tta", "five-crop")
        assert result.code == 2
        assert "Error: --tta five-crop cuts 28x28 crops from larger pictures, but this checkpoint reads whole pictures" in result.err
    assert not list(tmp_path.glob("eval-*")), "nothing written"
