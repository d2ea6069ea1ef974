"""The built-in operations: torchvision v2 transforms for the per-sample stage (and the policies),
hand-written batched versions of the common geometric and colour ones (per-image randomness, on
the training device; their colour arithmetic is :mod:`cnnkit.augment.colour`) and label mixing
on batches. ``cnnkit.builtins.augmentations`` registers every factory here by name.

Per-sample functions take and return one uint8 ``(C, H, W)`` tensor; randomness comes from torch's
global generator, which the pipeline seeds per sample. Batched functions follow
``cnnkit.contracts.BATCH_STAGE``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from cnnkit.augment import colour


def v2():
    from torchvision.transforms import v2 as transforms

    return transforms


def _pair(value, symmetric: bool = True):
    """A (low, high) range: a pair as it is; one number ``x`` as ``(-|x|, |x|)`` (angles) or ``(x, x)``."""
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return (-abs(value), abs(value)) if symmetric else (value, value)


def _size(size):
    return [size, size] if isinstance(size, int) else list(size)


# Per-sample operations (torchvision v2)

def check_crop(size, image_size, padding: int, pad_mode: str) -> None:
    """Refuse in words what torch would refuse in its own: a crop larger than the padded image,
    and reflecting padding as wide as the image."""
    (out_h, out_w), (h, w) = _size(size), tuple(image_size)
    if out_h > h + 2 * padding or out_w > w + 2 * padding:
        raise ValueError(f"the crop {out_h}x{out_w} is larger than the {h}x{w} image with padding {padding} "
                         f"({h + 2 * padding}x{w + 2 * padding}); choose a size up to {h + 2 * padding}x{w + 2 * padding}, "
                         f"or put resize({max(out_h, out_w)}) before it")
    if pad_mode in ("reflect", "symmetric") and padding >= min(h, w):
        raise ValueError(f"{pad_mode} padding of {padding} needs images larger than {padding} pixels, these are {h}x{w}; "
                         f"use padding up to {min(h, w) - 1}, or pad_mode=constant or edge")


def random_crop(size, padding=4, pad_mode="reflect"):
    crop = v2().RandomCrop(_size(size), padding=padding or None, padding_mode=pad_mode, pad_if_needed=True)

    def apply(image: torch.Tensor) -> torch.Tensor:
        check_crop(size, image.shape[-2:], padding, pad_mode)
        return crop(image)

    return apply


def random_resized_crop(size, scale=(0.08, 1.0), ratio=(0.75, 4 / 3)):
    return v2().RandomResizedCrop(_size(size), scale=_pair(scale, False), ratio=_pair(ratio, False), antialias=True)


def check_center_crop(size, image_size) -> None:
    """Refuse a centre crop larger than the image: torchvision pads it with black, so training
    would see a shrunken picture in a black frame that evaluation never shows."""
    (out_h, out_w), (h, w) = _size(size), tuple(image_size)
    if out_h > h or out_w > w:
        raise ValueError(f"the crop {out_h}x{out_w} is larger than the {h}x{w} image (a centre crop does not pad); "
                         f"choose a size up to {h}x{w}, or put resize({max(out_h, out_w)}) before it")


def center_crop(size):
    crop = v2().CenterCrop(_size(size))

    def apply(image: torch.Tensor) -> torch.Tensor:
        check_center_crop(size, image.shape[-2:])
        return crop(image)

    return apply


def resize(size):
    return v2().Resize(size, antialias=True)


def hflip(p=0.5):
    return v2().RandomHorizontalFlip(p)


def vflip(p=0.5):
    return v2().RandomVerticalFlip(p)


def rotation(degrees=15.0):
    return v2().RandomRotation(_pair(degrees))


def random_affine(degrees=10.0, translate=0.1, scale=(0.9, 1.1), shear=0.0):
    translate = None if not translate else (translate, translate)
    return v2().RandomAffine(_pair(degrees), translate=translate, scale=_pair(scale, False), shear=_pair(shear) if shear else None)


def color_jitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.0):
    return v2().ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue)


def brightness(amount=0.2):
    return v2().ColorJitter(brightness=amount)


def grayscale(p=0.1):
    return v2().RandomGrayscale(p)


def gaussian_blur(kernel=3, sigma=(0.1, 2.0)):
    return v2().GaussianBlur(kernel, sigma=_pair(sigma, False))


def random_erasing(p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3)):
    return v2().RandomErasing(p=p, scale=_pair(scale, False), ratio=_pair(ratio, False))


def gaussian_noise(std=0.05):
    def apply(image: torch.Tensor) -> torch.Tensor:
        noisy = image.float() + torch.randn(image.shape, device=image.device) * (255 * std)
        return noisy.round_().clamp_(0, 255).to(torch.uint8)

    return apply


def check_rgb(channels: int) -> None:
    if channels != 3:
        raise ValueError(f"AlexNet's PCA lighting works on RGB colour and these images have {channels} channel"
                         f"{'s' if channels > 1 else ''}; drop it, or use brightness")


def pca_lighting(std=0.1):
    """AlexNet's colour augmentation: add multiples of the RGB principal components, scaled by
    their eigenvalues and a N(0, std) draw per image (Krizhevsky et al. 2012, section 4.1)."""

    def apply(image: torch.Tensor) -> torch.Tensor:
        check_rgb(image.shape[-3])
        alpha = torch.randn(3) * std
        return colour.lighting(image.float()[None] / 255, alpha[None].to(image.device))[0].mul_(255).round_().to(torch.uint8)

    return apply


def autoaugment(policy="imagenet"):
    transforms = v2()
    return transforms.AutoAugment(transforms.AutoAugmentPolicy(policy))


def randaugment(ops=2, magnitude=9):
    return v2().RandAugment(num_ops=ops, magnitude=magnitude)


def trivialaugment():
    return v2().TrivialAugmentWide()


def augmix(severity=3, width=3):
    return v2().AugMix(severity=severity, mixture_width=width)


# Batched versions (per-image randomness from the run's generator, on the device)

def _rand(n: int, generator: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=device)


def _uniform(n, low, high, generator, device) -> torch.Tensor:
    return low + (high - low) * _rand(n, generator, device)


def batched_random_crop(size, padding=4, pad_mode="reflect"):
    """Pad, then cut each image's window at its own offset with one gather over the flattened
    pixels (7x faster on the CPU than indexing rows and columns)."""

    def apply(images, targets, generator):
        n, c, h, w = images.shape
        out_h, out_w = _size(size) if size is not None else (h, w)
        check_crop((out_h, out_w), (h, w), padding, pad_mode)
        pad_h, pad_w = padding + max(0, out_h - h - 2 * padding), padding + max(0, out_w - w - 2 * padding)
        mode = {"constant": "constant", "edge": "replicate", "reflect": "reflect", "symmetric": "reflect"}[pad_mode]
        padded = F.pad(images, (pad_w, pad_w, pad_h, pad_h), mode=mode) if pad_h or pad_w else images
        height, width = padded.shape[2:]
        dy = torch.randint(0, height - out_h + 1, (n,), generator=generator, device=images.device)
        dx = torch.randint(0, width - out_w + 1, (n,), generator=generator, device=images.device)
        window = (torch.arange(out_h, device=images.device)[:, None] * width + torch.arange(out_w, device=images.device)).view(1, 1, -1)
        index = (window + (dy * width + dx).view(-1, 1, 1)).expand(n, c, -1)
        return torch.gather(padded.reshape(n, c, -1), 2, index).view(n, c, out_h, out_w), targets

    return apply


def _flip(p, dim):
    def apply(images, targets, generator):
        chosen = _rand(images.shape[0], generator, images.device) < p
        return torch.where(chosen[:, None, None, None], images.flip(dim), images), targets

    return apply


def batched_hflip(p=0.5):
    return _flip(p, -1)


def batched_vflip(p=0.5):
    return _flip(p, -2)


def batched_color_jitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.0):
    """torchvision's ``ColorJitter`` per image: brightness, contrast and saturation factors drawn
    from [max(0, 1 - x), 1 + x], a hue shift from [-hue, hue], applied in an order drawn per image
    and clamped after each, as torchvision's functional ``adjust_*`` do."""
    ranges = [(colour.adjust_brightness, max(0, 1 - brightness), 1 + brightness, brightness),
              (colour.adjust_contrast, max(0, 1 - contrast), 1 + contrast, contrast),
              (colour.adjust_saturation, max(0, 1 - saturation), 1 + saturation, saturation),
              (colour.adjust_hue, -hue, hue, hue)]
    enabled = [(function, low, high) for function, low, high, amount in ranges if amount]

    def apply(images, targets, generator):
        if not enabled:
            return images, targets
        n, device = images.shape[0], images.device
        adjustments = [(function, _uniform(n, low, high, generator, device)) for function, low, high in enabled]
        order = torch.rand((n, len(enabled)), generator=generator, device=device).argsort(dim=1)
        return colour.jitter(images, adjustments, order), targets

    return apply


def batched_brightness(amount=0.2):
    return batched_color_jitter(brightness=amount)


def batched_grayscale(p=0.1):
    def apply(images, targets, generator):
        chosen = _rand(images.shape[0], generator, images.device) < p
        return torch.where(chosen[:, None, None, None], colour.gray(images).expand_as(images), images), targets

    return apply


def batched_gaussian_noise(std=0.05):
    def apply(images, targets, generator):
        noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
        return (images + std * noise).clamp_(0.0, 1.0), targets

    return apply


ERASING_DRAWS = 10
"""Rectangles torchvision's RandomErasing draws before giving up on an image."""


def batched_random_erasing(p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3)):
    """Cutout as torchvision's ``RandomErasing`` draws it, per image: with probability ``p``, up
    to 10 rectangles of ``scale`` of the area and aspect ``ratio``; the first that fits strictly
    inside the image is set to 0 (torchvision's default value), and none if no draw fits."""

    scale, ratio = _pair(scale, False), _pair(ratio, False)

    def apply(images, targets, generator):
        n, _, h, w = images.shape
        device = images.device
        draws = (n, ERASING_DRAWS)
        area = (scale[0] + (scale[1] - scale[0]) * torch.rand(draws, generator=generator, device=device)) * h * w
        low, high = math.log(ratio[0]), math.log(ratio[1])
        aspect = (low + (high - low) * torch.rand(draws, generator=generator, device=device)).exp()
        eh, ew = (area * aspect).sqrt().round(), (area / aspect).sqrt().round()
        fits = (eh < h) & (ew < w)
        first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)
        eh, ew = eh.gather(1, first).squeeze(1), ew.gather(1, first).squeeze(1)
        top = (_rand(n, generator, device) * (h - eh + 1)).floor()
        left = (_rand(n, generator, device) * (w - ew + 1)).floor()
        erase = (_rand(n, generator, device) < p) & fits.any(dim=1)
        ys = torch.arange(h, device=device).view(1, h, 1)
        xs = torch.arange(w, device=device).view(1, 1, w)
        inside = ((ys >= top.view(-1, 1, 1)) & (ys < (top + eh).view(-1, 1, 1))
                  & (xs >= left.view(-1, 1, 1)) & (xs < (left + ew).view(-1, 1, 1)) & erase.view(-1, 1, 1))
        return images.masked_fill(inside[:, None], 0.0), targets

    return apply


def batched_pca_lighting(std=0.1):
    def apply(images, targets, generator):
        check_rgb(images.shape[1])
        alpha = torch.randn((images.shape[0], 3), generator=generator, device=images.device) * std
        return colour.lighting(images, alpha), targets

    return apply


# Label mixing (batch stage only). Written here rather than taken from torchvision's v2 MixUp and
# CutMix: those take integer labels (so cannot follow label smoothing or each other), draw from
# torch's global generator, and do not report the weight they drew.

def _beta(alpha: float, generator: torch.Generator) -> float:
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def mixup(alpha=0.2):
    """Zhang et al. 2018: each image blended with the previous one of the batch, weight ~ Beta(alpha, alpha)."""

    def apply(images, targets, generator):
        lam = _beta(alpha, generator)
        return lam * images + (1 - lam) * images.roll(1, 0), lam * targets + (1 - lam) * targets.roll(1, 0)

    return apply


def cutmix(alpha=1.0):
    """Yun et al. 2019: a box of the previous image pasted in; the targets weigh each image by the
    area it shows."""

    def apply(images, targets, generator):
        h, w = images.shape[-2:]
        cut = math.sqrt(1.0 - _beta(alpha, generator))
        drawn = torch.randint(0, 2**31, (2,), generator=generator, device=generator.device)
        cy, cx = (int(v) for v in drawn % torch.tensor([h, w], device=generator.device))
        y1, y2 = max(cy - int(h * cut) // 2, 0), min(cy + int(h * cut) // 2, h)
        x1, x2 = max(cx - int(w * cut) // 2, 0), min(cx + int(w * cut) // 2, w)
        mixed = images.clone()
        mixed[..., y1:y2, x1:x2] = images.roll(1, 0)[..., y1:y2, x1:x2]
        lam = 1.0 - (y2 - y1) * (x2 - x1) / (h * w)
        return mixed, lam * targets + (1 - lam) * targets.roll(1, 0)

    return apply
