"""What each augmentation does: shapes, ranges, the transformation itself, and seeding."""

import pytest
import torch

from cnnkit.augment import ops
from cnnkit.augment.pipeline import BatchAugment, SampleAugment, resolve
from cnnkit.builtins.augmentations import MIXERS, OPERATIONS, PRESETS
from cnnkit.plugins import registry

SIZE = (16, 16)


def image(channels=3, seed=0, size=SIZE):
    return torch.randint(0, 256, (channels, *size), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def batch(n=6, channels=3, seed=0):
    return torch.rand((n, channels, *SIZE), generator=torch.Generator().manual_seed(seed))


def sample_fn(spec, size=SIZE):
    return SampleAugment(resolve(spec, registry("augmentations"), size).sample, size)


def test_every_operation_and_preset_is_registered_with_its_stage_and_parameters():
    augmentations = registry("augmentations")
    for name in [*OPERATIONS, *MIXERS, *PRESETS]:
        assert name in augmentations, name
    assert augmentations.get("mixup").metadata["stage"] == "batch"
    assert augmentations.get("cifar").metadata["stage"] == "preset"
    assert "padding=4 [0..1024]" in augmentations.get("random-crop").help


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_every_per_sample_operation_keeps_uint8_and_is_the_same_for_the_same_seed(name):
    augment = sample_fn(name)
    for channels in (1, 3) if name != "pca-lighting" else (3,):  # RGB only: refused on grayscale
        picture = image(channels)
        first, again = augment(picture, 7), augment(picture, 7)
        assert first.dtype == torch.uint8 and first.shape == (channels, *SIZE), name
        assert torch.equal(first, again), f"{name}: same seed, same image"
    changed = [not torch.equal(augment(image(3, seed), seed), image(3, seed)) for seed in range(12)]
    assert any(changed) or name in ("center-crop", "resize"), f"{name} never changed an image"


@pytest.mark.parametrize("name", sorted(n for n, (_, _, batched) in OPERATIONS.items() if batched))
def test_every_batched_operation_stays_in_range_and_is_seeded(name):
    steps = resolve(name, registry("augmentations"), SIZE).sample
    augment = BatchAugment(steps, [], 1.0)
    x = batch()
    a, _ = augment(x, torch.arange(6), torch.Generator().manual_seed(3))
    b, _ = augment(x, torch.arange(6), torch.Generator().manual_seed(3))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b)


def test_a_flip_flips():
    x = batch()
    flipped, _ = ops.batched_hflip(p=1.0)(x, None, torch.Generator())
    assert torch.equal(flipped, x.flip(-1))
    assert torch.equal(ops.batched_vflip(p=1.0)(x, None, torch.Generator())[0], x.flip(-2))
    assert torch.equal(sample_fn("hflip(p=1.0)")(image(), 0), image().flip(-1))


def test_random_crop_with_padding_shifts_by_at_most_the_padding():
    x = torch.arange(16.0).repeat(16, 1).expand(4, 1, 16, 16) / 16  # each column holds its index
    out, _ = ops.batched_random_crop(None, padding=2, pad_mode="constant")(x, None, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    centre = out[:, 0, 8, 8] * 16
    assert ((centre - 8).abs() <= 2).all()
    image = torch.rand(1, 3, 10, 12)
    cut, _ = ops.batched_random_crop((6, 7), padding=0)(image, None, torch.Generator().manual_seed(4))
    windows = [image[0, :, y:y + 6, x:x + 7] for y in range(5) for x in range(6)]
    assert any(torch.equal(cut[0], window) for window in windows), "an exact window of the image"


def test_mixup_and_cutmix_targets_sum_to_one_and_cutmix_weighs_the_pasted_area():
    n, classes = 8, 5
    x = torch.arange(n, dtype=torch.float).view(n, 1, 1, 1).expand(n, 3, 16, 16) / n  # a constant image each
    targets = torch.nn.functional.one_hot(torch.arange(n) % classes, classes).float()
    mixed, soft = ops.mixup(alpha=0.4)(x, targets, torch.Generator().manual_seed(1))
    assert torch.allclose(soft.sum(1), torch.ones(n))
    lam = soft[0, 0].item()
    assert torch.allclose(mixed[0], lam * x[0] + (1 - lam) * x[-1])
    for seed in range(5):
        mixed, soft = ops.cutmix(alpha=1.0)(x, targets, torch.Generator().manual_seed(seed))
        assert torch.allclose(soft.sum(1), torch.ones(n))
        pasted = (mixed[1] != x[1]).any(0).float().mean().item()  # image 1 received pixels of image 0
        assert soft[1, 1].item() == pytest.approx(1 - pasted)


def test_pca_lighting_changes_colour_but_not_geometry():
    x = batch(channels=3)
    lit, _ = ops.batched_pca_lighting(std=0.5)(x, None, torch.Generator().manual_seed(0))
    shift = lit - x
    inner = (x > 0.1) & (x < 0.9) & (lit > 0) & (lit < 1)  # away from clamping, the shift is one colour per image
    assert not torch.allclose(lit, x)
    for i in range(len(x)):
        for c in range(3):
            values = shift[i, c][inner[i, c]]
            assert values.numel() and torch.allclose(values, values[0].expand_as(values), atol=1e-6)


def test_random_erasing_zeroes_one_rectangle():
    x = batch() + 0.5
    erased, _ = ops.batched_random_erasing(p=1.0)(x.clamp(0.01, 1), None, torch.Generator().manual_seed(0))
    for img in erased:
        rows, cols = torch.nonzero((img == 0).all(0), as_tuple=True)
        assert rows.numel() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)


def test_color_jitter_and_grayscale():
    x = batch()
    gray, _ = ops.batched_grayscale(p=1.0)(x, None, torch.Generator())
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])
    brighter, _ = ops.batched_brightness(amount=0.5)(torch.full((64, 3, 2, 2), 0.5), None, torch.Generator().manual_seed(0))
    assert brighter.max() > 0.55 and brighter.min() < 0.45, "brighter and darker"


def test_mix_prob_and_the_choice_between_mixup_and_cutmix():
    steps = resolve("mixup, cutmix", registry("augmentations"), SIZE).mixers
    never = BatchAugment([], steps, 0.0)
    x, t = batch(), torch.eye(6)
    assert torch.equal(never(x, t, torch.Generator())[1], t)
    always = BatchAugment([], steps, 1.0)
    kinds = set()
    for seed in range(20):
        mixed, soft = always(x, t, torch.Generator().manual_seed(seed))
        kinds.add("cutmix" if ((mixed == x) | (mixed == x.roll(1, 0))).all() else "mixup")
    assert kinds == {"mixup", "cutmix"}


def test_presets_expand_for_the_input_size():
    resolved = resolve("cifar", registry("augmentations"), (32, 32))
    assert [(s.entry.name, s.params.get("padding")) for s in resolved.sample] == [("random-crop", 4), ("hflip", None)]
    alexnet = resolve("alexnet-2012", registry("augmentations"), (224, 224))
    assert [s.entry.name for s in alexnet.sample] == ["resize", "center-crop", "random-crop", "hflip", "pca-lighting"]
    assert alexnet.sample[0].params["size"] == 256


@pytest.mark.parametrize("spec, message", [
    ("hflip, hfip", "at character 8: Unknown augmentation 'hfip'. Did you mean 'hflip'?"),
    ("random-crop(paddin=4)", "Unknown parameter of random-crop 'paddin'. Did you mean 'padding'? random-crop takes (size="),
    ("hflip(p=2)", "at character 1: hflip: p must be in 0..1, got 2"),
    ("mixup, hflip", "hflip comes after mixup; put mixup and cutmix last"),
    ("hflip(", "this parenthesis is never closed"),
    ("hflip,", "the spec ends with ','"),
    ("hflip(__import__('os'))", "must be plain values"),
    ("cifar(3)", "preset cifar takes no arguments"),
    ("autoaugment(mars)", "policy must be one of imagenet, cifar10, svhn, got 'mars'"),
])
def test_spec_errors_point_at_the_token(run_cli, spec, message):
    result = run_cli("train", "--augment", spec, "--epochs", "1")
    assert result.code == 2
    assert message in result.err and len(result.err.strip().splitlines()) == 1, result.err


@pytest.mark.slow
def test_custom_batch_augmentation_from_a_plugin_sees_soft_targets(run_cli, install_plugin, tmp_path):
    install_plugin("cnnkit-swap", """
        from cnnkit import hookimpl
        from cnnkit.contracts import BATCH_STAGE, AugmentParam

        def swap(strength=1.0):
            def apply(images, targets, generator):
                assert targets.ndim == 2
                return images.flip(0), targets.flip(0)
            return apply

        @hookimpl
        def register_augmentations(register):
            register("swap", swap, help="swap", stage=BATCH_STAGE, params=(AugmentParam("strength", "float", 1.0),))
    """)
    result = run_cli("train", "--augment", "hflip, swap(strength=0.5)", "--epochs", "1", "--out", str(tmp_path), "--quiet")
    assert result.code == 0, result.err


def test_batches_end_at_the_model_size_whatever_the_crop():
    steps = resolve("random-crop(12, padding=0)", registry("augmentations"), SIZE).sample
    out, _ = BatchAugment(steps, [], 1.0, SIZE)(batch(), torch.arange(6), torch.Generator())
    assert out.shape == (6, 3, *SIZE)


def test_arguments_the_batched_version_cannot_do_run_per_sample():
    assert resolve("color-jitter(0.2, 0.2, 0)", registry("augmentations"), SIZE).batchable
    assert resolve("color-jitter(0, 0, 0, 0.5)", registry("augmentations"), SIZE).batchable, "hue is batched too"
    assert not resolve("random-crop(pad_mode=symmetric)", registry("augmentations"), SIZE).batchable


def test_one_number_for_a_range_means_plus_or_minus_or_exactly():
    for spec in ("rotation(-15)", "random-affine(degrees=-10, shear=-5, scale=1.2)", "random-resized-crop(scale=0.5)",
                 "random-erasing(p=1.0, scale=0.1)", "gaussian-blur(sigma=1.0)"):
        assert sample_fn(spec)(image(), 1).shape == (3, *SIZE), spec


@pytest.mark.parametrize("spec, message", [
    ("random-crop(padding=30)", "random-crop(size=[28, 28], padding=30, pad_mode='reflect') cannot run on 1x28x28 images: "),
    ("gaussian-blur(4)", "gaussian-blur(kernel=4, sigma=(0.1, 2.0)) cannot run on 1x28x28 images: Kernel size value should be an odd"),
    ("hflip(p=0.3, p=0.4)", "hflip(...) names a parameter twice"),
    ("cutmix, cifar", "cifar comes after cutmix; put mixup and cutmix last"),
    ("randaugment(ops=100000)", "ops must be in 1..20"),
])
def test_arguments_an_operation_refuses_are_usage_errors_before_anything_is_written(run_cli, tmp_path, spec, message):
    result = run_cli("train", "--augment", spec, "--epochs", "1", "--out", str(tmp_path / "runs"))
    assert result.code == 2 and message in result.err, result.err
    assert not (tmp_path / "runs").exists()


def test_long_specs_are_quoted_around_the_error_only(run_cli):
    spec = ", ".join(["hflip"] * 500 + ["hfilp"])
    result = run_cli("train", "--augment", spec, "--epochs", "1")
    assert result.code == 2 and "Unknown augmentation 'hfilp'" in result.err and len(result.err) < 400
