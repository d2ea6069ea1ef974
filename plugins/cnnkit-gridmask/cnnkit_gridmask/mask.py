"""GridMask (Chen, Liu, Wang and Jia, "GridMask Data Augmentation", 2020, arXiv:2001.04086).

Each image is covered by a grid of square units of side ``d`` pixels. In every unit, strips of
width ``l = round(ratio * d)`` along its top and left edges are kept and the square of side
``d - l`` in its bottom-right corner is dropped; the grid is shifted by offsets ``delta_y``,
``delta_x`` drawn from ``0 .. d-1`` and rotated about the image centre by an angle drawn from
``[0, rotate)`` degrees. This is the paper's definition, the official code's ``mode=1``: the keep
ratio of a unit is ``1 - (1 - ratio) ** 2``. Each image is masked with probability ``p`` and gets
its own ``d``, offsets and angle; the dropped pixels take the value ``fill`` in every channel.

The mask is computed pixel by pixel: each pixel centre is rotated back into the grid's frame and
its grid cell tested, which is what rotating the pixel mask with nearest-neighbour sampling does,
on a canvas without edges (the official code rotates a 1.5x canvas and leaves its corners kept).
Both stages compute it with the same function from the same draws, so with the same seed the
per-sample and the batched version drop exactly the same pixels.

Because each offset is uniform over the ``d`` positions of a unit, every pixel is dropped with
probability ``p * mean over d of ((d - l) / d) ** 2``, whatever its place and the angle
(:func:`expected_dropped_share`); about ``p * (1 - ratio) ** 2``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

SampleFunction = Callable[[torch.Tensor], torch.Tensor]
BatchedFunction = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]

MIN_UNIT = 2
"""The smallest unit side in pixels: a unit of 1 pixel can keep or drop, not both."""


@dataclass(frozen=True)
class Draws:
    """What one batch of masks is made of, one entry per image."""

    apply: torch.Tensor
    """bool: whether the image is masked at all (probability ``p``)."""
    unit: torch.Tensor
    """int64: the unit side ``d`` in pixels."""
    kept: torch.Tensor
    """int64: the kept strip width ``l = round(ratio * d)``."""
    offset_y: torch.Tensor
    offset_x: torch.Tensor
    """int64: where the grid starts, ``0 .. d-1``."""
    angle: torch.Tensor
    """float: the grid's rotation in degrees."""


@dataclass(frozen=True)
class GridMask:
    """GridMask's parameters; ``d`` is the unit side's range as shares of the image's shorter side."""

    d: tuple[float, float] = (0.43, 1.0)
    ratio: float = 0.6
    rotate: float = 360.0
    p: float = 0.8
    fill: float = 0.0

    def unit_range(self, height: int, width: int) -> tuple[int, int]:
        """The smallest and largest unit side in pixels for ``height`` x ``width`` images."""
        side = min(height, width)
        low = max(MIN_UNIT, round(self.d[0] * side))
        return low, max(low, round(self.d[1] * side))

    def draw(self, count: int, height: int, width: int, generator: torch.Generator | None,
             device: torch.device) -> Draws:
        """Five uniform numbers per image, from ``generator`` (None: torch's global generator),
        turned into the mask's random parts."""
        uniform = torch.rand((count, 5), generator=generator, device=device)
        low, high = self.unit_range(height, width)
        unit = (low + (uniform[:, 1] * (high - low + 1)).floor().long()).clamp_(max=high)
        kept = torch.tensor([kept_width(d, self.ratio) for d in range(low, high + 1)], device=device)[unit - low]
        offset_y = (uniform[:, 2] * unit).floor().long().minimum(unit - 1)
        offset_x = (uniform[:, 3] * unit).floor().long().minimum(unit - 1)
        return Draws(uniform[:, 0] < self.p, unit, kept, offset_y, offset_x, uniform[:, 4] * self.rotate)

    def dropped_share(self, height: int, width: int) -> float:
        """The share of pixels dropped on average, for ``height`` x ``width`` images."""
        return expected_dropped_share(self.unit_range(height, width), self.ratio, self.p)


def expected_dropped_share(unit_range: tuple[int, int], ratio: float, p: float) -> float:
    """``p * mean over d of ((d - l) / d) ** 2`` with ``l = round(ratio * d)``: the chance that a
    pixel is dropped, the same for every pixel and angle, as the offsets are uniform over a unit."""
    units = range(unit_range[0], unit_range[1] + 1)
    return p * sum(((d - kept_width(d, ratio)) / d) ** 2 for d in units) / len(units)


def kept_width(unit: int, ratio: float) -> int:
    """The kept strip width of a unit of side ``unit``: the official code's ``int(d * ratio + 0.5)``."""
    return math.floor(unit * ratio + 0.5)


def dropped(draws: Draws, height: int, width: int) -> torch.Tensor:
    """bool ``(N, height, width)``: the pixels each image loses."""
    device = draws.unit.device
    count = draws.unit.shape[0]
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5 - height / 2).view(1, height, 1)
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5 - width / 2).view(1, 1, width)
    radians = draws.angle * (math.pi / 180)
    cos, sin = radians.cos().view(count, 1, 1), radians.sin().view(count, 1, 1)
    column = (cos * xs + sin * ys + width / 2).floor().long()
    row = (cos * ys - sin * xs + height / 2).floor().long()
    unit, kept = draws.unit.view(count, 1, 1), draws.kept.view(count, 1, 1)
    in_row = (row - draws.offset_y.view(count, 1, 1)).remainder(unit) >= kept
    in_column = (column - draws.offset_x.view(count, 1, 1)).remainder(unit) >= kept
    return in_row & in_column & draws.apply.view(count, 1, 1)


def masked(images: torch.Tensor, drop: torch.Tensor, fill: float) -> torch.Tensor:
    """``images`` ``(N, C, H, W)`` with the ``drop`` pixels set to ``fill`` (0..1; 0..255 for uint8)."""
    value = fill if images.is_floating_point() else round(fill * 255)
    return images.masked_fill(drop[:, None], value)


def unit_shares(d: float | tuple[float, float] | list[float]) -> tuple[float, float]:
    """``d`` as (low, high); one number is a fixed unit side, as cnnkit passes ``d=0.5``."""
    if isinstance(d, (int, float)):
        return (float(d), float(d))
    low, high = d
    return (float(low), float(high))


def gridmask(d: float | tuple[float, float] = (0.43, 1.0), ratio: float = 0.6, rotate: float = 360.0, p: float = 0.8,
             fill: float = 0.0) -> SampleFunction:
    """The per-sample version: one uint8 ``(C, H, W)`` image, randomness from torch's global
    generator (which cnnkit seeds for every sample)."""
    grid = GridMask(unit_shares(d), ratio, rotate, p, fill)

    def apply(image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        drop = dropped(grid.draw(1, height, width, None, image.device), height, width)
        return masked(image[None], drop, grid.fill)[0]

    return apply


def batched_gridmask(d: float | tuple[float, float] = (0.43, 1.0), ratio: float = 0.6, rotate: float = 360.0,
                     p: float = 0.8, fill: float = 0.0) -> BatchedFunction:
    """The batched version: float ``(N, C, H, W)`` images in 0..1 on the training device, each
    with its own draws from ``generator``; the targets pass through."""
    grid = GridMask(unit_shares(d), ratio, rotate, p, fill)

    def apply(images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        count, _, height, width = images.shape
        drop = dropped(grid.draw(count, height, width, generator, images.device), height, width)
        return masked(images, drop, grid.fill), targets

    return apply
