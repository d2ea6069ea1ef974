"""Augmentations that cannot do what they are asked say so in one line before training: PCA
lighting on grayscale, a crop larger than the (padded) image, reflecting padding wider than it;
presets made for ImageNet photos are noted on tiny images, and --mix-prob without a mixer warned."""

import pytest
import torch

from cnnkit.augment import ops
from cnnkit.augment.pipeline import dry_run, resolve
from cnnkit.errors import UsageError
from cnnkit.plugins import registry


def refusal(spec, channels=1, size=(28, 28), batched=None):
    resolved = resolve(spec, registry("augmentations"), size)
    with pytest.raises(UsageError) as caught:
        dry_run(resolved, spec, channels, size, resolved.batchable if batched is None else batched)
    return str(caught.value)


def test_pca_lighting_on_grayscale_is_refused_per_sample_and_batched():
    """It used to return grayscale images unchanged: an augmentation that silently did nothing."""
    with pytest.raises(ValueError, match="AlexNet's PCA lighting works on RGB colour and these images have 1 channel"):
        ops.pca_lighting()(torch.zeros((1, 8, 8), dtype=torch.uint8))
    with pytest.raises(ValueError, match="works on RGB colour"):
        ops.batched_pca_lighting()(torch.zeros((2, 1, 8, 8)), None, torch.Generator())
    for batched in (True, False):
        assert refusal("hflip, pca-lighting", batched=batched) == (
            "--augment: pca-lighting(std=0.1) cannot run on 1x28x28 images: AlexNet's PCA lighting works on RGB colour "
            "and these images have 1 channel; drop it, or use brightness")


def test_a_preset_that_cannot_run_names_itself_and_what_it_expands_to():
    message = refusal("alexnet-2012")
    assert message.startswith("--augment: pca-lighting(std=0.1) of preset alexnet-2012 cannot run on 1x28x28 images")
    assert message.endswith("(preset alexnet-2012 is: resize(32), center-crop(32), random-crop(padding=0), hflip, pca-lighting(0.1))")


@pytest.mark.parametrize("batched", [True, False])
def test_a_crop_larger_than_the_padded_image_is_refused_in_words(batched):
    assert refusal("random-crop(size=64)", batched=batched) == (
        "--augment: random-crop(size=64, padding=4, pad_mode='reflect') cannot run on 1x28x28 images: the crop 64x64 is "
        "larger than the 28x28 image with padding 4 (36x36); choose a size up to 36x36, or put resize(64) before it")
    assert "reflect padding of 30 needs images larger than 30 pixels, these are 28x28; use padding up to 27, or pad_mode=constant" \
        in refusal("random-crop(padding=30)", batched=batched)


@pytest.mark.parametrize("spec", ["resize(64), random-crop(size=64, padding=0)", "random-crop(size=36, padding=4, pad_mode=constant)"])
def test_each_operation_is_tried_on_the_images_the_one_before_gives_it(spec):
    """The dry run used to try every operation on a 28x28 image, refusing a crop of 64 that a
    resize(64) before it makes possible; a crop exactly as large as the padded image is fine."""
    resolved = resolve(spec, registry("augmentations"), (28, 28))
    for batched in {resolved.batchable, False}:
        dry_run(resolved, spec, 1, (28, 28), batched)


@pytest.mark.parametrize(("spec", "stored", "size", "noted"), [
    ("imagenet", (1, 8, 8), [1, 28, 28], ["imagenet"]),  # the case: 8x8 digits, 29% validation accuracy
    ("alexnet-2012, mixup", None, [3, 16, 16], ["alexnet-2012"]),
    ("autoaugment-imagenet", (3, 20, 20), [3, 224, 224], ["autoaugment-imagenet"]),
    ("imagenet", (3, 300, 400), [3, 224, 224], []),
    ("imagenet", None, [3, 32, 32], []),
    ("cifar", (1, 8, 8), [1, 28, 28], []),
])
def test_presets_made_for_imagenet_photos_are_noted_on_tiny_images(capsys, spec, stored, size, noted):
    from cnnkit.recipe.data_setup import note_tiny_images

    note_tiny_images(resolve(spec, registry("augmentations"), tuple(size[1:])), stored, size)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[3] for line in lines] == noted
    side = min(stored[1:]) if stored and min(stored[1:]) < size[1] else size[1]
    assert all(line.startswith("cnnkit: note: preset ") and f"on {side}x{side} images it may cost accuracy" in line for line in lines)


@pytest.mark.parametrize(("spec", "mix_prob", "warned"), [
    ("hflip", 0.5, "cnnkit: warning: --mix-prob 0.5 has no effect: --augment has no mixup or cutmix.\n"),
    ("", 0.3, "cnnkit: warning: --mix-prob 0.3 has no effect: --augment has no mixup or cutmix.\n"),
    ("hflip, mixup", 0.5, ""),
    ("hflip", 1.0, ""),
])
def test_mix_prob_without_mixup_or_cutmix_is_warned_about(capsys, spec, mix_prob, warned):
    from cnnkit.data.splits import DataSplits, Split
    from cnnkit.options import TrainConfig
    from cnnkit.recipe.data_setup import prepare_augmentation

    split = Split(torch.zeros((4, 1, 8, 8), dtype=torch.uint8), torch.tensor([0, 1, 0, 1]))
    data = DataSplits(split, split, None, ["a", "b"], "test")
    prepare_augmentation(resolve(spec, registry("augmentations"), (8, 8)), TrainConfig(augment=spec, mix_prob=mix_prob), data, [1, 8, 8])
    assert capsys.readouterr().err == warned


def test_a_centre_crop_larger_than_the_image_is_refused_not_padded_with_black():
    """torchvision pads such a crop with black: center-crop(64) on 28x28 digits trained on a
    shrunken digit in a black frame (25% of each image) that validation never shows."""
    assert refusal("center-crop(64)") == (
        "--augment: center-crop(size=64) cannot run on 1x28x28 images: the crop 64x64 is larger than the 28x28 image "
        "(a centre crop does not pad); choose a size up to 28x28, or put resize(64) before it")
    assert refusal("center-crop(30)", size=(40, 28)).endswith(
        "the crop 30x30 is larger than the 40x28 image (a centre crop does not pad); choose a size up to 40x28, or put "
        "resize(30) before it")
    with pytest.raises(ValueError, match="the crop 9x9 is larger than the 8x8 image"):
        ops.center_crop(9)(torch.zeros((3, 8, 8), dtype=torch.uint8))


def test_a_centre_crop_that_fits_is_torchvisions():
    from torchvision.transforms.v2 import functional as TF

    from cnnkit.augment.pipeline import SampleAugment

    picture = torch.randint(0, 256, (3, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    assert torch.equal(ops.center_crop(28)(picture), picture)
    assert torch.equal(ops.center_crop((12, 20))(picture), TF.center_crop(picture, [12, 20]))
    spec = "resize(64), center-crop(56)"
    resolved = resolve(spec, registry("augmentations"), (28, 28))
    dry_run(resolved, spec, 3, (28, 28), resolved.batchable)
    expected = TF.resize(TF.center_crop(TF.resize(picture, 64, antialias=True), [56, 56]), 28, antialias=True)
    assert torch.equal(SampleAugment(resolved.sample, (28, 28))(picture, 0), expected)


@pytest.mark.parametrize("spec", ["center-crop(32), resize(28)", "random-crop(size=32, padding=0), resize(28)"])
def test_crops_of_stored_pictures_are_checked_on_the_picture_they_get(spec):
    """Before a resize, folders stream the stored pictures, whose size the dry run cannot know: it
    used to try such a crop on the model's 28x28 input and refuse 32 for 40x40 pictures. The
    operation refuses a picture too small for it when it meets one, in one line."""
    from cnnkit.augment.pipeline import SampleAugment

    resolved = resolve(spec, registry("augmentations"), (28, 28))
    dry_run(resolved, spec, 1, (28, 28), False)
    augment = SampleAugment(resolved.sample, (28, 28))
    assert augment(torch.zeros((1, 40, 40), dtype=torch.uint8), 0).shape == (1, 28, 28)
    with pytest.raises(UsageError) as caught:
        augment(torch.zeros((1, 16, 16), dtype=torch.uint8), 0)
    name = spec.split("(")[0]
    assert str(caught.value).startswith(f"--augment: {name}(size=32") and "cannot run on 1x16x16 images: the crop 32x32 is " \
        "larger than the 16x16 image" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.slow
def test_a_refusal_in_a_loader_worker_is_still_one_line():
    """A DataLoader re-raises a worker's exception with the worker's traceback as its message."""
    from torch.utils.data import DataLoader

    from cnnkit.augment.pipeline import SampleAugment

    augment = SampleAugment(resolve("center-crop(20), resize(28)", registry("augmentations"), (28, 28)).sample, (28, 28))
    loader = DataLoader([torch.zeros((1, 16, 16), dtype=torch.uint8)], num_workers=1, collate_fn=lambda items: [augment(i, 0) for i in items])
    with pytest.raises(UsageError) as caught:
        next(iter(loader))
    assert str(caught.value) == ("--augment: center-crop(size=20) cannot run on 1x16x16 images: the crop 20x20 is larger than "
                                 "the 16x16 image (a centre crop does not pad); choose a size up to 16x16, or put resize(20) before it")
