"""Augmentation inside training: every preset trains, seeds repeat, evaluation is never augmented,
and the preview writes a picture for every preset."""

import json

import numpy as np
import pytest
from PIL import Image

from cnnkit.builtins.augmentations import PRESETS

RGB_ONLY = ("alexnet-2012",)


def metrics(folder):
    return [line.rsplit(",", 1)[0] for line in (folder / "metrics.csv").read_text().splitlines()]


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.slow
def test_every_preset_trains_end_to_end(run_cli, tmp_path, preset, image_folder):
    data = ["--data", str(image_folder), "--model", "resnet20", "--image-size", "16"] if preset in RGB_ONLY else []
    result = run_cli("train", "--augment", preset, "--epochs", "1", "--batch-size", "256", *data,
                     "--out", str(tmp_path), "--name", "run", "--quiet")
    assert result.code == 0, result.err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["augment"] == preset


@pytest.mark.slow
def test_the_same_seed_gives_the_same_augmented_run_and_another_seed_another(run_cli, tmp_path):
    spec = "random-crop(padding=2), hflip, gaussian-noise(0.02), mixup(0.4)"
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        result = run_cli("train", "--augment", spec, "--epochs", "2", "--seed", seed, "--out", str(tmp_path), "--name", name, "--quiet")
        assert result.code == 0, result.err
    assert metrics(tmp_path / "a") == metrics(tmp_path / "b") != metrics(tmp_path / "c")


@pytest.mark.slow
def test_per_sample_augmentation_gives_the_same_run_streamed_in_memory_and_with_workers(run_cli, tmp_path, image_folder):
    runs = {}
    for name, flags in {"memory": ["--data-in-memory", "yes"], "stream": ["--data-in-memory", "no"],
                        "workers": ["--data-in-memory", "no", "--workers", "2"]}.items():
        result = run_cli("train", "--data", str(image_folder), "--augment", "autoaugment(cifar10), cutmix", "--epochs", "2",
                         "--batch-size", "8", "--out", str(tmp_path), "--name", name, "--quiet", *flags)
        assert result.code == 0, result.err
        runs[name] = metrics(tmp_path / name)
    assert runs["memory"] == runs["stream"] == runs["workers"]


@pytest.mark.slow
def test_evaluation_is_never_augmented(run_cli, tmp_path):
    """Validation and test metrics of a run with heavy augmentation match the saved best weights
    scored on the untouched test images."""
    import torch

    from cnnkit.data.digits import load_digits
    from cnnkit.inference.model import load_trained

    result = run_cli("train", "--augment", "random-erasing(p=1.0), gaussian-noise(0.3), cutmix", "--epochs", "2",
                     "--out", str(tmp_path), "--name", "heavy", "--precision", "fp32", "--quiet")
    assert result.code == 0, result.err
    trained = load_trained(tmp_path / "heavy")
    test = load_digits().test
    with torch.no_grad():
        accuracy = (trained.model(trained.normalise(test.images)).argmax(1) == test.labels).float().mean().item()
    assert accuracy == pytest.approx(trained.saved["metrics"]["test"]["acc"], abs=1e-6)


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.slow
def test_preview_writes_a_grid_for_every_preset_on_a_photo_and_on_the_digits(run_cli, tmp_path, preset):
    photo = tmp_path / "photo.jpg"
    y, x = np.mgrid[0:120, 0:160]
    Image.fromarray(np.stack([x % 256, y * 2, (x + y) % 256], -1).astype(np.uint8)).save(photo)
    for source in (["--image", str(photo)], []):
        out = tmp_path / f"{preset}-{len(source)}.png"
        result = run_cli("augment", "preview", "--augment", f"{preset}, mixup", *source, "--grid", "3x2", "--out", str(out))
        assert result.code == 0, result.err
        sheet = np.asarray(Image.open(out).convert("L"), dtype=np.int16)
        assert sheet.shape == (40 + 2 * 200, 3 * 160)
        cells = [sheet[40 + r * 200 + 4: 40 + r * 200 + 156, c * 160 + 4: c * 160 + 156] for r in range(2) for c in range(3)]
        assert all(cell.std() > 0 for cell in cells), "every cell holds a picture"
        assert any(np.abs(cell - cells[0]).mean() > 1 for cell in cells[1:]), "variants differ from the original"


def test_augment_list_shows_stages_and_parameters(run_cli):
    result = run_cli("augment", "list")
    assert result.code == 0
    line = next(line for line in result.out.splitlines() if line.startswith("cutmix"))
    assert "batch" in line and "alpha=1.0" in line and "dominant label" in line


def test_random_resized_crop_gets_a_folders_original_pictures(run_cli, tmp_path, make_images, monkeypatch):
    make_images(tmp_path / "data" / "a", 6, (0, 0, 0), size=40)
    make_images(tmp_path / "data" / "b", 6, (255, 255, 255), size=40)
    seen = []
    from cnnkit.augment import pipeline

    real = pipeline.SampleAugment.__call__

    def spy(self, image, seed):
        seen.append(tuple(image.shape))
        return real(self, image, seed)

    monkeypatch.setattr(pipeline.SampleAugment, "__call__", spy)
    result = run_cli("train", "--data", str(tmp_path / "data"), "--augment", "imagenet", "--image-size", "16",
                     "--model", "resnet20", "--epochs", "1", "--out", str(tmp_path / "runs"), "--quiet")
    assert result.code == 0, result.err
    assert "streaming the training images at their stored size: random-resized-crop" in result.err
    assert seen and seen.count((3, 40, 40)) == len(seen), "training augmented the 40x40 originals, not 16x16 crops"


def test_preview_crops_a_photo_as_training_would_and_checks_its_output(run_cli, tmp_path):
    Image.fromarray(np.full((50, 70, 3), 90, np.uint8)).save(tmp_path / "small.png")  # smaller than --size
    result = run_cli("augment", "preview", "--augment", "cifar", "--image", str(tmp_path / "small.png"), "--out", str(tmp_path / "p.png"))
    assert result.code == 0, result.err
    bad = run_cli("augment", "preview", "--augment", "cifar", "--out", str(tmp_path / "p.txt"))
    assert bad.code == 2 and bad.err.strip() == f"Error: --out '{tmp_path / 'p.txt'}' must end in .png."
    missing = run_cli("augment", "preview", "--augment", "cifar", "--out", str(tmp_path / "no" / "p.png"))
    assert missing.code == 2 and "does not exist" in missing.err
