"""Residual networks from two reusable blocks (He, Zhang, Ren and Sun, CVPR 2016).

``BasicBlock`` (two 3x3 convolutions) and ``Bottleneck`` (1x1, 3x3, 1x1 with 4x expansion) each add
their input to their output through a shortcut: the identity when shapes match, else option A
(subsample and pad the new channels with zeros: no parameters, as the paper's CIFAR networks do)
or option B (a 1x1 projection with batch norm). ``CifarResNet`` is the paper's section 4.2 family
for 32x32 input: a 3x3 conv of 16 filters, three stages of n blocks with 16, 32 and 64 filters
(stride 2 at the start of the second and third), global average pooling and one linear layer:
6n + 2 layers with basic blocks (9n + 2 with bottlenecks). resnet20/32/44/56/110 have 0.27M/0.46M/0.66M/0.85M/1.7M parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SHORTCUTS = ("A", "B")


class PadShortcut(nn.Module):
    """Option A: keep every ``stride``-th pixel and zero-pad the extra channels (no parameters)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride, self.extra = stride, out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


def shortcut(in_channels: int, out_channels: int, stride: int, kind: str) -> nn.Module:
    if kind not in SHORTCUTS:
        raise ValueError(f"shortcut must be 'A' (zero padding) or 'B' (projection), got {kind!r}")
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if kind == "A":
        return PadShortcut(in_channels, out_channels, stride)
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, shortcut_kind: str = "B"):
        super().__init__()
        out = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.shortcut = shortcut(in_channels, out, stride, shortcut_kind)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x), inplace=True)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1, shortcut_kind: str = "B"):
        super().__init__()
        out = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.shortcut = shortcut(in_channels, out, stride, shortcut_kind)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = F.relu(self.bn2(self.conv2(y)), inplace=True)
        return F.relu(self.bn3(self.conv3(y)) + self.shortcut(x), inplace=True)


class CifarResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int = 10, in_channels: int = 3, shortcut: str = "A",
                 block: type[BasicBlock | Bottleneck] = BasicBlock):
        super().__init__()
        per_block = 3 if block is Bottleneck else 2
        if (depth - 2) % (3 * per_block) or depth < 3 * per_block + 2:
            raise ValueError(
                f"a CIFAR ResNet of {block.__name__}s has {3 * per_block}n + 2 layers, not {depth}"
            )
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be 'A' (zero padding) or 'B' (projection), got {shortcut!r}")
        n = (depth - 2) // (3 * per_block)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        stages, channels = [], 16
        for index, width in enumerate((16, 32, 64)):
            blocks = []
            for i in range(n):
                stride = 2 if index > 0 and i == 0 else 1
                blocks.append(block(channels, width, stride, shortcut))
                channels = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stage1, self.stage2, self.stage3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage3(self.stage2(self.stage1(self.stem(x))))
        return self.fc(self.pool(x).flatten(1))
