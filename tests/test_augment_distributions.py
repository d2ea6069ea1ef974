"""Batched operations drawn like their per-sample versions. color-jitter against torchvision's
ColorJitter: each adjustment equals torchvision's functional one exactly, any order of them equals
the functional calls chained in that order, and over many draws the batched version is
distributed like ColorJitter applied image by image. random-erasing against RandomErasing."""

import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from cnnkit.augment import colour, ops

ADJUSTMENTS = {
    "brightness": (colour.adjust_brightness, F.adjust_brightness),
    "contrast": (colour.adjust_contrast, F.adjust_contrast),
    "saturation": (colour.adjust_saturation, F.adjust_saturation),
    "hue": (colour.adjust_hue, F.adjust_hue),
}


def photos(n=32, channels=3, seed=0):
    return torch.rand((n, channels, 12, 12), generator=torch.Generator().manual_seed(seed))


def factors(name, n, seed=1):
    draw = torch.rand(n, generator=torch.Generator().manual_seed(seed))
    return draw - 0.5 if name == "hue" else 2 * draw  # hue: turns in [-0.5, 0.5]; others: factors 0..2


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", sorted(ADJUSTMENTS))
def test_each_adjustment_with_forced_factors_equals_torchvisions_functional_one(name, channels):
    batched, functional = ADJUSTMENTS[name]
    images, amount = photos(channels=channels), factors(name, 32)
    expected = torch.stack([functional(image, float(value)) for image, value in zip(images, amount)])
    assert torch.equal(batched(images, amount), expected)


def test_each_image_takes_its_own_order_and_equals_the_functional_calls_chained_in_it():
    images = photos(24)
    names = ["brightness", "contrast", "saturation", "hue"]
    amounts = [factors(name, 24, seed=i) for i, name in enumerate(names)]
    order = torch.stack([torch.randperm(4, generator=torch.Generator().manual_seed(i)) for i in range(24)])
    out = colour.jitter(images, [(ADJUSTMENTS[name][0], amount) for name, amount in zip(names, amounts)], order)
    for i in range(24):
        expected = images[i]
        for index in order[i].tolist():
            expected = ADJUSTMENTS[names[index]][1](expected, float(amounts[index][i]))
        assert torch.equal(out[i], expected), f"image {i}, order {order[i].tolist()}"
    brightened_first = colour.jitter(images[:1], [(colour.adjust_brightness, torch.tensor([1.8])),
                                                  (colour.adjust_contrast, torch.tensor([0.2]))], torch.tensor([[0, 1]]))
    contrast_first = colour.jitter(images[:1], [(colour.adjust_brightness, torch.tensor([1.8])),
                                                (colour.adjust_contrast, torch.tensor([0.2]))], torch.tensor([[1, 0]]))
    assert not torch.allclose(brightened_first, contrast_first), "the order matters once values clip"


def statistics(images):
    saturated = ((images == 0) | (images == 1)).float().mean().item()
    return saturated, images.mean(dim=(0, 2, 3)), images.std(dim=(0, 2, 3))


@pytest.mark.slow
def test_over_many_draws_the_batched_jitter_is_distributed_like_torchvisions_per_image():
    """The issue's measure: the share of clipped pixels (here 13.0% against torchvision's 9.4% when
    the factors were applied in a fixed order and clipped once; seeds move it by under 0.4% with
    4,000 images), and each channel's mean and std. Hue (slow through torchvision image by image)
    is covered by the exact comparisons above."""
    base = (photos(16, seed=3) * torch.linspace(0.3, 1.6, 16).view(-1, 1, 1, 1)).clamp(0, 1)  # dim to already clipped
    images = base.repeat(250, 1, 1, 1)
    batched, _ = ops.batched_color_jitter(0.4, 0.4, 0.4)(images, None, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    jitter = v2.ColorJitter(0.4, 0.4, 0.4)
    reference = torch.stack([jitter(image) for image in images])
    (ours, our_mean, our_std), (theirs, their_mean, their_std) = statistics(batched), statistics(reference)
    assert ours == pytest.approx(theirs, abs=0.01)
    assert torch.allclose(our_mean, their_mean, atol=0.01) and torch.allclose(our_std, their_std, atol=0.01)


def test_every_order_of_the_adjustments_is_equally_likely_for_each_image(monkeypatch):
    seen = {}
    monkeypatch.setattr(colour, "jitter", lambda images, adjustments, order: seen.setdefault("order", order) is None or images)
    ops.batched_color_jitter(0.4, 0.4, 0.4, 0.1)(photos(2400), None, torch.Generator().manual_seed(0))
    counts = torch.unique(seen["order"], dim=0, return_counts=True)[1]
    assert len(counts) == 24, "all 4! orders"
    assert counts.min() > 100 - 4 * 10 and counts.max() < 100 + 4 * 10, "about 100 each (std 10)"


def erased(images):
    gone = images[:, 0] == 0
    rows, cols = gone.any(2).sum(1), gone.any(1).sum(1)
    return gone.float().mean().item(), gone.any(2).any(1).float().mean().item(), ((rows == 16) | (cols == 16)).float().mean().item()


def test_random_erasing_redraws_rectangles_that_do_not_fit_as_torchvision_does():
    """torchvision draws up to ten rectangles and erases the first that fits strictly inside the
    image (none if none fits); clamping an oversized one to the image instead erased whole rows or
    columns in two thirds of these images, which torchvision never does."""
    images = torch.full((2000, 1, 16, 16), 0.5)
    ours = erased(ops.batched_random_erasing(p=1.0, scale=(0.4, 0.9))(images, None, torch.Generator().manual_seed(0))[0])
    torch.manual_seed(0)
    erasing = v2.RandomErasing(p=1.0, scale=(0.4, 0.9))
    theirs = erased(torch.stack([erasing(image) for image in images]))
    assert ours[2] == theirs[2] == 0, "no rectangle spans the image"
    assert ours[0] == pytest.approx(theirs[0], abs=0.01), "erased share of the pixels"
    assert ours[1] == pytest.approx(theirs[1], abs=0.01) and ours[1] < 0.995, "images where no draw fits stay whole"
