"""Batched augmentations: each transforms a whole float batch ``(N, C, H, W)`` in 0..1 at once,
on the batch's device, drawing randomness from the run's seeded generator (on that same device)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(max_fraction: float = 0.125):
    """Translate each image by up to ``max_fraction`` of its size, filling with edge pixels."""

    def apply(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = images.shape
        pad_h, pad_w = max(1, round(h * max_fraction)), max(1, round(w * max_fraction))
        padded = F.pad(images, (pad_w, pad_w, pad_h, pad_h), mode="replicate")
        dy = torch.randint(0, 2 * pad_h + 1, (n,), generator=generator, device=images.device)
        dx = torch.randint(0, 2 * pad_w + 1, (n,), generator=generator, device=images.device)
        rows = (dy[:, None] + torch.arange(h, device=images.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, None, :]
        batch = torch.arange(n, device=images.device)[:, None, None, None]
        chans = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
        return padded[batch, chans, rows, cols]

    return apply


def horizontal_flip(p: float = 0.5):
    """Mirror each image left-right with probability ``p``."""

    def apply(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        flip = torch.rand(images.shape[0], generator=generator, device=images.device) < p
        return torch.where(flip[:, None, None, None], images.flip(-1), images)

    return apply


def gaussian_noise(std: float = 0.05):
    """Add zero-mean Gaussian noise with standard deviation ``std``, clamped to 0..1."""

    def apply(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(images.shape, generator=generator, device=images.device)
        return (images + std * noise).clamp_(0.0, 1.0)

    return apply


def compose(steps):
    def apply(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for step in steps:
            images = step(images, generator)
        return images

    return apply
