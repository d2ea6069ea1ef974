"""Test-time augmentation: a checkpoint's class probabilities averaged over several views of each
image. ``flip`` is the image and its mirror; ``five-crop`` the four corners and the centre;
``ten-crop`` those and their mirrors, how Krizhevsky et al. (2012) scored their test set: 224x224
patches of 256x256 pictures, the softmax outputs of the ten averaged.

Probabilities are averaged, not logits: the paper did so and the ``alexnet-2012`` preset promises
its evaluation; ``evaluate`` and ``predict`` report probabilities, and an average of probabilities
is still a distribution over the classes; and no view outvotes the others with a few very large logits.

The crops need pictures larger than the model's input. A checkpoint whose evaluation reads the
centre share ``crop_fraction`` of each picture (224 of 256) gives the size: the crops are cut from
the whole picture read at ``input_size / crop_fraction``, so the centre crop is the view the model
is normally evaluated on. A checkpoint that reads whole pictures has no such size, and the crops
are refused rather than shown at a scale the model never trained on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnnkit.errors import UsageError

if TYPE_CHECKING:
    import torch

    from cnnkit.inference.model import Trained

MODES = ("none", "flip", "five-crop", "ten-crop")
CROPPING = ("five-crop", "ten-crop")
PAPER_PRESET = "alexnet-2012"
"""Checkpoints trained with this augmentation preset evaluate as the paper did: ten crops."""


def default_mode(trained: Trained) -> str:
    """``ten-crop`` for a checkpoint trained with the ``alexnet-2012`` preset (its recorded
    ``config.augment`` names it), else ``none``."""
    from cnnkit.augment.spec import parse

    spec = str(trained.saved.get("config", {}).get("augment") or "")
    try:
        names = [call.name for call in parse(spec)]
    except UsageError:
        return "none"
    return "ten-crop" if PAPER_PRESET in names else "none"


def read_size(trained: Trained, mode: str) -> tuple[tuple[int, int], float]:
    """(height, width) to read each picture at, and the centre share to read, for ``mode``: the
    checkpoint's own for ``none`` and ``flip``; the whole picture at ``input_size / crop_fraction``
    for the crops (224 of 256: read at 256, crops of 224)."""
    _, height, width = trained.input_size
    if mode not in CROPPING:
        return (height, width), trained.crop_fraction
    share = trained.crop_fraction
    if share >= 1:
        raise UsageError(f"--tta {mode} cuts {height}x{width} crops from larger pictures, but this checkpoint reads whole pictures "
                         f"at {height}x{width} (it records no centre crop); use --tta flip, or train with an augmentation "
                         "whose evaluation reads a centre crop (--augment alexnet-2012 or imagenet).")
    return (round(height / share), round(width / share)), 1.0


def views(images: torch.Tensor, mode: str, size: tuple[int, int]) -> list[torch.Tensor]:
    """The views of a batch of images ``(N, C, H, W)`` that ``mode`` averages over, each
    ``(N, C, *size)`` (``size``: the model's input; the crops come from torchvision)."""
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional

    if mode == "none":
        return [images]
    if mode == "flip":
        return [images, functional.hflip(images)]
    crops = v2.TenCrop(list(size)) if mode == "ten-crop" else v2.FiveCrop(list(size))
    return list(crops(images))


def averaged_probabilities(trained: Trained, images: torch.Tensor, mode: str) -> torch.Tensor:
    """Class probabilities ``(N, classes)`` of uint8 ``images`` read for ``mode`` (see
    :func:`read_size`): the softmax of each view, averaged over the views. The views go through
    the model one at a time, so ten crops need no more memory than one."""
    import torch

    _, height, width = trained.input_size
    shown = views(images, mode, (height, width))
    return torch.stack([trained.model(trained.normalise(view)).softmax(1) for view in shown]).mean(0)


def centre_view(images: torch.Tensor, trained: Trained) -> torch.Tensor:
    """The centre ``input_size`` crop of images read larger for the crops (the view the model is
    evaluated on without TTA); images at the input size are returned as they are."""
    from torchvision.transforms.v2 import functional

    _, height, width = trained.input_size
    if tuple(images.shape[-2:]) == (height, width):
        return images
    return functional.center_crop(images, [height, width])
