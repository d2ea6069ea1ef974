"""The factories of the built-in models whose class takes more than ``--model-kwargs`` should
set: they narrow the choices to what the class accepts (``Literal``, so a wrong value is refused
before a run starts) and bind what the registered name fixes. Imported only when one is built."""

from __future__ import annotations

from typing import Literal

from cnnkit.models.alexnet import AlexNet2012
from cnnkit.models.resnet import CifarResNet


def alexnet_2012(*, num_classes: int = 1000, in_channels: int = 3, norm: Literal["lrn", "batch", "none"] = "lrn",
                 dropout: float = 0.5, groups: Literal[1, 2] = 1) -> AlexNet2012:
    """``groups=2``: the paper's two towers (conv2, conv4, conv5 within each); 1: one tower."""
    return AlexNet2012(num_classes=num_classes, in_channels=in_channels, norm=norm, dropout=dropout, groups=groups)


def cifar_resnet(depth: int, /, *, num_classes: int = 10, in_channels: int = 3,
                 shortcut: Literal["A", "B"] = "A") -> CifarResNet:
    """CIFAR ResNet-``depth`` (6n+2 layers); the registered name fixes the depth."""
    return CifarResNet(depth, num_classes=num_classes, in_channels=in_channels, shortcut=shortcut)
