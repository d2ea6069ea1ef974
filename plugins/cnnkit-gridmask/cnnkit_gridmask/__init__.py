"""cnnkit plugin registering the augmentation ``gridmask`` (Chen et al. 2020), per sample and
batched on the training device. The factories are named by reference (``module:attribute``), so
importing this module imports no torch; cnnkit imports :mod:`cnnkit_gridmask.mask` when a spec uses it."""

from __future__ import annotations

from cnnkit import hookimpl
from cnnkit.contracts import AugmentationRegister, AugmentParam

__version__ = "0.1.0"
CNNKIT_API = ">=1.0,<2"

PARAMS = (
    AugmentParam("d", "pair", (0.43, 1.0), min=0.01, max=4.0,
                 help="unit side drawn per image, as shares of the shorter side (one number: fixed); "
                      "the paper's ImageNet range is 96..224 pixels of 224"),
    AugmentParam("ratio", "float", 0.6, min=0.0, max=1.0,
                 help="kept strip width per unit (the paper's r); each unit drops a square of side (1 - ratio) * d"),
    AugmentParam("rotate", "float", 360.0, min=0.0, max=360.0, help="grid rotated by an angle drawn from [0, rotate) degrees"),
    AugmentParam("p", "float", 0.8, min=0.0, max=1.0, help="probability per image"),
    AugmentParam("fill", "float", 0.0, min=0.0, max=1.0, help="value of the dropped pixels on the 0..1 scale"),
)
"""The paper's ImageNet settings (official code: --d1 96 --d2 224 --ratio 0.6 --rotate 360 --mode 1
--prob 0.8; the paper raises the probability to 0.8 over training, cnnkit keeps it fixed)."""

HELP = ("GridMask (Chen et al. 2020): drop a rotated grid of squares, each unit keeping strips of ratio * d "
        "(d=(0.43, 1.0), ratio=0.6, rotate=360, p=0.8, fill=0.0)")


@hookimpl
def register_augmentations(register: AugmentationRegister) -> None:
    register("gridmask", "cnnkit_gridmask.mask:gridmask", help=HELP, stage="sample", params=PARAMS,
             batched="cnnkit_gridmask.mask:batched_gridmask")
