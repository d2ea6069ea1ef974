"""Images read for pretrained weights are the pixels the weights' own ``transforms()`` give:
JPEGs decoded whole, the shorter side resized, the centre cropped (torchvision and timm). From-
scratch training keeps the faster reduced-scale decode, which is measurably different."""

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.contracts import DataRequest
from cnnkit.data.folder import load_folder
from cnnkit.data.images import decode


def photo(path, height=480, width=640, seed=0):
    """A 4:3 JPEG with smooth shapes and sensor-like noise, as photos have."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([128 + 100 * np.sin(x / 17.0 + c) * np.cos(y / 23.0) for c in range(3)], -1)
    Image.fromarray(np.clip(base + rng.normal(0, 10, (height, width, 3)), 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


def reference(transform, path):
    """The uint8-scale pixels a torchvision/timm transform gives (its normalisation undone)."""
    mean = torch.tensor(transform.mean if hasattr(transform, "mean") else (0, 0, 0)).view(3, 1, 1)
    std = torch.tensor(transform.std if hasattr(transform, "std") else (1, 1, 1)).view(3, 1, 1)
    return (transform(Image.open(path).convert("RGB")) * std + mean) * 255


def within(got, expected):
    diff = (torch.as_tensor(got).float() - expected).abs()
    return diff.max().item() <= 2 and diff.mean().item() < 0.5


def test_pixels_for_torchvision_weights_equal_their_transforms(tmp_path):
    from torchvision.models import ResNet18_Weights

    transform = ResNet18_Weights.IMAGENET1K_V1.transforms()
    assert (transform.crop_size, transform.resize_size, transform.interpolation.value) == ([224], [256], "bilinear")
    shapes = {"a": [(480, 640), (512, 768)], "b": [(500, 375), (333, 500)]}  # 4:3, exact 2x, portrait, odd
    for name, sizes in shapes.items():
        (tmp_path / "data" / name).mkdir(parents=True)
        for i, (height, width) in enumerate(sizes):
            photo(tmp_path / "data" / name / f"{i}.jpg", height, width, seed=i)
    request = DataRequest(image_size=(224, 224), channels=3, val_split=0.5, crop_fraction=224 / 256, as_weights=True)
    data = load_folder(tmp_path / "data", request)
    for split in (data.train, data.val):
        for index in range(len(split.source)):
            path = split.source.paths[index]
            expected = reference(transform, path)
            assert within(split.source.read(index), expected), path
    fast = decode(tmp_path / "data" / "a" / "0.jpg", (224, 224), 3, 224 / 256, "bilinear")
    assert not within(fast, reference(transform, tmp_path / "data" / "a" / "0.jpg")), "the reduced-scale path differs"


@pytest.mark.parametrize("size, crop, interpolation", [((224, 224), 0.95, "bicubic"), ((224, 160), 0.9, "bilinear")])
def test_pixels_for_timm_weights_equal_timms_eval_transform(tmp_path, size, crop, interpolation):
    from timm.data import create_transform

    transform = create_transform(size, crop_pct=crop, interpolation=interpolation, mean=(0, 0, 0), std=(1, 1, 1))
    path = photo(tmp_path / "photo.jpg", 375, 500)
    assert within(decode(path, size, 3, crop, interpolation, as_weights=True), reference(transform, path))


def spy_on_requests(monkeypatch):
    """The requests the folder reader gets; the run stops there (exit 0)."""
    import cnnkit.data.folder

    seen = []

    def record(root, request):
        seen.append(request)
        raise SystemExit(0)

    monkeypatch.setattr(cnnkit.data.folder, "load_folder", record)
    return seen


def test_fine_tuning_pretrained_weights_reads_as_the_weights_and_training_from_scratch_does_not(
        run_cli, tmp_path, monkeypatch, image_folder):
    from torchvision.models import get_model

    torch.save(get_model("resnet18", weights=None).state_dict(), tmp_path / "weights.pth")
    seen = spy_on_requests(monkeypatch)
    run_cli("finetune", "--backbone", "resnet18", "--weights", str(tmp_path / "weights.pth"), "--data", str(image_folder),
            "--out", str(tmp_path / "runs"))
    run_cli("train", "--model", "mnist-cnn", "--data", str(image_folder), "--out", str(tmp_path / "runs"))
    assert [(r.as_weights, r.crop_fraction, r.interpolation) for r in seen] == [(True, 0.875, "bilinear"), (False, 1.0, "bilinear")]


@pytest.mark.slow
def test_a_fine_tuned_run_records_how_to_read_its_images_again(run_cli, tmp_path, image_folder):
    import json

    from torchvision.models import get_model

    from cnnkit.data.images import run_reads_as_weights

    torch.save(get_model("resnet18", weights=None).state_dict(), tmp_path / "weights.pth")
    result = run_cli("finetune", "--backbone", "resnet18", "--weights", str(tmp_path / "weights.pth"), "--data", str(image_folder),
                     "--image-size", "32", "--epochs", "1", "--out", str(tmp_path / "runs"), "--name", "tuned", "--quiet")
    assert result.code == 0, result.err
    assert run_reads_as_weights(json.loads((tmp_path / "runs" / "tuned" / "config.json").read_text())) is True
    assert run_reads_as_weights({"model": "mnist-cnn", "backbone": "", "pretrained": True}) is False


@pytest.mark.slow
def test_predict_reads_a_fine_tuned_runs_jpegs_as_the_weights_do(run_cli, tmp_path):
    from torchvision.models import get_model

    from cnnkit.data.images import decode
    from cnnkit.inference.model import load_trained
    from cnnkit.inference.predict import predict

    for label in ("ants", "bees"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for index in range(3):
            photo(tmp_path / "data" / label / f"{index}.jpg", height=150, width=200, seed=index + 10 * len(label))
    torch.save(get_model("resnet18", weights=None).state_dict(), tmp_path / "weights.pth")
    result = run_cli("finetune", "--backbone", "resnet18", "--weights", str(tmp_path / "weights.pth"), "--data",
                     str(tmp_path / "data"), "--image-size", "32", "--epochs", "1", "--val-split", "0.34",
                     "--out", str(tmp_path / "runs"), "--name", "tuned", "--quiet")
    assert result.code == 0, result.err
    trained = load_trained(str(tmp_path / "runs" / "tuned"))
    image = tmp_path / "data" / "bees" / "0.jpg"
    (prediction,) = predict(trained, [str(image)], topk=2)
    whole = torch.from_numpy(decode(image, (32, 32), 3, 0.875, "bilinear", True))
    with torch.no_grad():
        expected = trained.model(trained.normalise(whole[None])).softmax(1)[0]
    got = dict(prediction.top)
    for index, name in enumerate(trained.classes):
        assert got[name] == pytest.approx(expected[index].item(), abs=1e-6)
    reduced = torch.from_numpy(decode(image, (32, 32), 3, 0.875, "bilinear", False))
    assert not torch.equal(whole, reduced), "the test image must tell the two decodes apart"
