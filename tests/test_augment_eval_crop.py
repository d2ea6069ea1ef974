"""Evaluation at the scale training shows: a spec that trains on crops of a fixed share of the
picture (alexnet-2012: 224 of 256) or a preset with its own evaluation crop (imagenet, as
torchvision's reference: resize 256, centre crop 224) has its validation and test images read as
that centre crop, resized to the model's input; the checkpoint records it for evaluate and predict."""

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.augment.pipeline import resolve
from cnnkit.plugins import registry

SIDE = 56  # with alexnet-2012: resize(64), centre 64x64, random 56x56 crops, the share 56/64 = 224/256


def photo_folder(root, seed=0):
    """Noise pictures of 64x96 (no two pixels alike, so any other crop or scale shows)."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", 4), ("val", 2), ("test", 2)):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(root / split / name / f"{i}.png")
    return root


def by_hand(path, fraction=224 / 256, side=SIDE):
    """Centre crop of ``fraction`` of the shorter side, resized to side x side (bilinear)."""
    with Image.open(path) as img:
        width, height = img.size
        crop = min(width, height) * fraction
        left, top = (width - crop) / 2, (height - crop) / 2
        box = tuple(int(v) for v in (left, top, left + crop, top + crop))
        assert box == (20, 4, 76, 60)  # whole pixels: a crop, then a resize
        return np.array(img.convert("RGB").crop(box).resize((side, side), Image.Resampling.BILINEAR)).transpose(2, 0, 1)


def loaded(folder, augment, side=SIDE):
    from cnnkit.contracts import DataRequest
    from cnnkit.options import TrainConfig
    from cnnkit.recipe.data_setup import load_data
    from cnnkit.recipe.plan import make_plan

    config = TrainConfig(data=str(folder), model="resnet20", image_size=str(side), augment=augment)
    plan = make_plan(config)
    request = DataRequest(image_size=(side, side), channels=3)
    return load_data(plan, request, 1, config, [3, side, side], 0)


@pytest.mark.parametrize("augment", ["alexnet-2012", "imagenet"])
def test_validation_and_test_images_are_the_centre_224_of_256_resized(tmp_path, augment):
    folder = photo_folder(tmp_path / "photos")
    data = loaded(folder, augment)
    for split in ("val", "test"):
        files = sorted((folder / split).glob("*/*.png"))
        part = data.splits()[split]
        images = part.materialize().images if hasattr(part, "materialize") else part.images
        expected = np.stack([by_hand(path) for path in files])
        assert np.array_equal(images.numpy(), expected), split


@pytest.mark.parametrize(("spec", "size", "share"), [
    ("alexnet-2012", 227, round(227 / 259, 4)),  # resize(259), centre 259, random 227: the paper's 224 of 256
    ("alexnet-2012", 224, 0.875),
    ("imagenet", 224, 0.875),  # torchvision's reference: random-resized crops, evaluated at 224 of 256
    ("resize(64), random-crop(48, padding=0)", 48, 0.75),
    ("random-crop(24, padding=0), hflip", 32, 0.75),  # 24 of the 32 stored pixels, scaled back up
    ("cifar", 32, 1.0),  # padded crops of the full size show the whole picture
    ("random-resized-crop, hflip", 32, 1.0),  # drawn at random: no fixed share
    ("hflip, mixup", 32, 1.0),
])
def test_the_evaluation_crop_is_the_share_training_crops_show(spec, size, share):
    assert resolve(spec, registry("augmentations"), (size, size)).eval_crop[0] == share


def test_pretrained_weights_keep_their_own_crop():
    from cnnkit.contracts import DataRequest
    from cnnkit.recipe.data_setup import eval_crop

    alexnet = resolve("alexnet-2012", registry("augmentations"), (224, 224))
    assert eval_crop(alexnet, DataRequest((224, 224), 3, crop_fraction=0.95)) == 0.95
    assert eval_crop(alexnet, DataRequest((224, 224), 3)) == 0.875


def test_in_memory_data_is_cropped_from_its_stored_images():
    from cnnkit.contracts import DataRequest
    from cnnkit.data.splits import Split
    from cnnkit.recipe.data_setup import centre_cropped

    images = torch.randint(0, 256, (3, 3, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    split = centre_cropped(Split(images, torch.arange(3)), 0.875, DataRequest((SIDE, SIDE), 3)).materialize()
    expected = [np.array(Image.fromarray(image.permute(1, 2, 0).numpy()).crop((4, 4, 60, 60))).transpose(2, 0, 1) for image in images]
    assert np.array_equal(split.images.numpy(), np.stack(expected)), "the centre 56 of 64, at 56: the pixels themselves"
    assert torch.equal(split.labels, torch.arange(3))


@pytest.mark.slow
def test_the_checkpoint_records_the_crop_and_evaluate_reads_the_test_split_as_training_did(run_cli, tmp_path):
    folder = photo_folder(tmp_path / "photos")
    result = run_cli("train", "--data", str(folder), "--model", "resnet20", "--image-size", str(SIDE), "--augment", "alexnet-2012",
                     "--epochs", "1", "--precision", "fp32", "--out", str(tmp_path / "runs"), "--name", "a", "--quiet")
    assert result.code == 0, result.err
    assert "validation and test images are the centre 0.875 of each picture, resized to 56x56" in result.err
    from cnnkit.inference.evaluate import predictions, read_split
    from cnnkit.inference.model import load_trained

    trained = load_trained(tmp_path / "runs" / "a")
    assert trained.crop_fraction == 0.875
    _, part = read_split(trained, "", "test")
    _, _, images = predictions(trained, part)
    files = sorted((folder / "test").glob("*/*.png"))
    assert np.array_equal(images.numpy(), np.stack([by_hand(path) for path in files]))
