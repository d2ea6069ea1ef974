"""The built-in operations: torchvision v2 transforms for the per-sample stage (and the policies),
hand-written batched versions of the common geometric and colour ones (per-image randomness, on
the training device) and label mixing on batches.

Per-sample functions take and return one uint8 ``(C, H, W)`` tensor; randomness comes from torch's
global generator, which the pipeline seeds per sample. Batched functions follow
``cnnkit.contracts.BATCH_STAGE``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVEC = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))
"""Eigenvalues and eigenvectors of the RGB covariance of ImageNet pixels (0..1 scale), as used by
fb.resnet.torch and timm for AlexNet's PCA lighting noise."""


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

def random_crop(size, padding=4, pad_mode="reflect"):
    return v2().RandomCrop(_size(size), padding=padding or None, padding_mode=pad_mode, pad_if_needed=True)


def random_resized_crop(size, scale=(0.08, 1.0), ratio=(0.75, 4 / 3)):
    return v2().RandomResizedCrop(_size(size), scale=_pair(scale, False), ratio=_pair(ratio, False), antialias=True)


def center_crop(size):
    return v2().CenterCrop(_size(size))


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


def pca_lighting(std=0.1):
    """AlexNet's colour augmentation: add multiples of the RGB principal components, scaled by
    their eigenvalues and a N(0, std) draw per image (Krizhevsky et al. 2012, section 4.1)."""

    def apply(image: torch.Tensor) -> torch.Tensor:
        alpha = torch.randn(3) * std
        if image.shape[0] != 3:  # defined for RGB; grayscale images pass unchanged
            return image
        return _lighting(image.float()[None] / 255, alpha[None].to(image.device))[0].mul_(255).round_().to(torch.uint8)

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


def _gray(images: torch.Tensor) -> torch.Tensor:
    if images.shape[1] == 1:
        return images
    weights = torch.tensor([0.299, 0.587, 0.114], device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


def batched_color_jitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.0):
    """Brightness, contrast and saturation factors drawn per image from [1 - x, 1 + x], applied in
    that order (torchvision draws the order; a fixed order keeps this one fused). No hue."""

    def apply(images, targets, generator):
        n, device = images.shape[0], images.device
        if brightness:
            images = images * _uniform(n, max(0, 1 - brightness), 1 + brightness, generator, device).view(-1, 1, 1, 1)
        if contrast:
            factor = _uniform(n, max(0, 1 - contrast), 1 + contrast, generator, device).view(-1, 1, 1, 1)
            mean = _gray(images).mean(dim=(1, 2, 3), keepdim=True)
            images = mean + factor * (images - mean)
        if saturation and images.shape[1] == 3:
            factor = _uniform(n, max(0, 1 - saturation), 1 + saturation, generator, device).view(-1, 1, 1, 1)
            gray = _gray(images)
            images = gray + factor * (images - gray)
        return images.clamp(0, 1), targets

    return apply


def batched_brightness(amount=0.2):
    return batched_color_jitter(brightness=amount)


def batched_grayscale(p=0.1):
    def apply(images, targets, generator):
        chosen = _rand(images.shape[0], generator, images.device) < p
        return torch.where(chosen[:, None, None, None], _gray(images).expand_as(images), images), targets

    return apply


def batched_gaussian_noise(std=0.05):
    def apply(images, targets, generator):
        noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
        return (images + std * noise).clamp_(0.0, 1.0), targets

    return apply


def batched_random_erasing(p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3)):
    """Cutout: with probability ``p`` a rectangle of ``scale`` of the area and aspect ``ratio`` per
    image is set to 0 (torchvision's default value)."""

    scale, ratio = _pair(scale, False), _pair(ratio, False)

    def apply(images, targets, generator):
        n, _, h, w = images.shape
        device = images.device
        area = _uniform(n, scale[0], scale[1], generator, device) * h * w
        aspect = torch.exp(_uniform(n, math.log(ratio[0]), math.log(ratio[1]), generator, device))
        eh = (area * aspect).sqrt().round().clamp(1, h)
        ew = (area / aspect).sqrt().round().clamp(1, w)
        top = (_rand(n, generator, device) * (h - eh + 1)).floor()
        left = (_rand(n, generator, device) * (w - ew + 1)).floor()
        erase = _rand(n, generator, device) < p
        ys = torch.arange(h, device=device).view(1, h, 1)
        xs = torch.arange(w, device=device).view(1, 1, w)
        inside = ((ys >= top.view(-1, 1, 1)) & (ys < (top + eh).view(-1, 1, 1))
                  & (xs >= left.view(-1, 1, 1)) & (xs < (left + ew).view(-1, 1, 1)) & erase.view(-1, 1, 1))
        return images.masked_fill(inside[:, None], 0.0), targets

    return apply


def _lighting(images: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``images`` (N, 3, H, W) in 0..1 plus ``eigvec @ (alpha * eigval)`` per image."""
    eigval = torch.tensor(IMAGENET_EIGVAL, device=images.device)
    eigvec = torch.tensor(IMAGENET_EIGVEC, device=images.device)
    shift = (alpha * eigval) @ eigvec.T
    return (images + shift.view(-1, 3, 1, 1)).clamp_(0, 1)


def batched_pca_lighting(std=0.1):
    def apply(images, targets, generator):
        if images.shape[1] != 3:
            return images, targets
        alpha = torch.randn((images.shape[0], 3), generator=generator, device=images.device) * std
        return _lighting(images, alpha), targets

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
        cy, cx = (int(v) for v in torch.randint(0, 2**31, (2,), generator=generator, device=generator.device) % torch.tensor([h, w], device=generator.device))
        y1, y2 = max(cy - int(h * cut) // 2, 0), min(cy + int(h * cut) // 2, h)
        x1, x2 = max(cx - int(w * cut) // 2, 0), min(cx + int(w * cut) // 2, w)
        mixed = images.clone()
        mixed[..., y1:y2, x1:x2] = images.roll(1, 0)[..., y1:y2, x1:x2]
        lam = 1.0 - (y2 - y1) * (x2 - x1) / (h * w)
        return mixed, lam * targets + (1 - lam) * targets.roll(1, 0)

    return apply
