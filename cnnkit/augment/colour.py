"""Colour arithmetic on float batches ``(N, C, H, W)`` in 0..1, one factor per image, computed as
torchvision's functional ``adjust_*`` and ``rgb_to_grayscale`` compute it (same weights, same order
of operations, so the batched operations in :mod:`cnnkit.augment.ops` match their per-sample
versions), and AlexNet's PCA lighting."""

from __future__ import annotations

from collections.abc import Callable

import torch

IMAGENET_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVEC = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))
"""Eigenvalues and eigenvectors of the RGB covariance of ImageNet pixels (0..1 scale), as used by
fb.resnet.torch and timm for AlexNet's PCA lighting noise."""


def gray(images: torch.Tensor) -> torch.Tensor:
    """Luma as torchvision's ``rgb_to_grayscale`` computes it (same weights, same order of operations)."""
    if images.shape[1] == 1:
        return images
    r, g, b = images.unbind(1)
    return r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(1)


def blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """torchvision's blend with a factor per image: ``factor * images + (1 - factor) * other``, clamped
    (``addcmul_`` rounds as torchvision's ``add_(other, alpha=...)`` does)."""
    return images.mul(factor).addcmul_(other, 1 - factor).clamp_(0, 1)


def adjust_brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return images.mul(factor.view(-1, 1, 1, 1)).clamp_(0, 1)


def adjust_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    mean = gray(images).mean(dim=(1, 2, 3), keepdim=True)
    return blend(images, mean, factor.view(-1, 1, 1, 1))


def adjust_saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    if images.shape[1] == 1:  # as torchvision (and PIL): grayscale has no saturation
        return images
    return blend(images, gray(images), factor.view(-1, 1, 1, 1))


def adjust_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Hue rotated by ``shift`` turns per image, through torchvision's own HSV conversion."""
    if images.shape[1] == 1:
        return images
    try:
        from torchvision.transforms.v2.functional._color import _hsv_to_rgb, _rgb_to_hsv
    except ImportError:  # torchvision moved its private helpers: one image at a time through the public function
        from torchvision.transforms.v2.functional import adjust_hue as one

        return torch.stack([one(image, value) for image, value in zip(images, shift.tolist())])
    h, s, v = _rgb_to_hsv(images).unbind(1)
    h = h.add(shift.view(-1, 1, 1)).remainder_(1.0)
    return _hsv_to_rgb(torch.stack((h, s, v), 1))


def jitter(images: torch.Tensor, adjustments: list[tuple[Callable, torch.Tensor]], order: torch.Tensor) -> torch.Tensor:
    """``images`` through ``adjustments`` (function, factor per image), each image in its own
    order (``order[i]`` a permutation of the adjustments' indices), clamped after each step."""
    if order.shape[1] == 1:
        function, factor = adjustments[0]
        return function(images, factor)
    images = images.clone()
    for position in range(order.shape[1]):
        for index, (function, factor) in enumerate(adjustments):
            chosen = torch.nonzero(order[:, position] == index).flatten()
            if chosen.numel():
                images[chosen] = function(images[chosen], factor[chosen])
    return images


def lighting(images: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``images`` (N, 3, H, W) in 0..1 plus ``eigvec @ (alpha * eigval)`` per image."""
    eigval = torch.tensor(IMAGENET_EIGVAL, device=images.device)
    eigvec = torch.tensor(IMAGENET_EIGVEC, device=images.device)
    shift = (alpha * eigval) @ eigvec.T
    return (images + shift.view(-1, 3, 1, 1)).clamp_(0, 1)
