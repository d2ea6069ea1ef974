"""AlexNet after Krizhevsky, Sutskever and Hinton (NeurIPS 2012): by default the one-tower variant
(every layer sees all channels of the one before; 62,378,344 parameters at 1000 classes), with
``groups=2`` the paper's two towers, one per GPU: conv2, conv4 and conv5 see only the feature
maps of their own tower, and local response normalisation works within each tower (60,965,224
parameters, the paper's network).

227x227 input; ReLU; local response normalisation after conv1 and conv2; overlapping max-pooling
(3x3, stride 2); dropout 0.5 on the outputs of the two hidden fully connected layers. Feature maps: 55x55
after conv1, 27x27 after pool1 and conv2, 13x13 after pool2 to conv5, 6x6 after pool3. Weights
start from N(0, 0.01) and the biases of conv2, conv4, conv5 and the hidden FC layers from 1, as
in the paper (section 5); the others from 0.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

NORMS = ("lrn", "batch", "none")
GROUPS = (1, 2)
BIASES_AT_ONE = ("conv2", "conv4", "conv5", "fc6", "fc7")


class PerTower(nn.Module):
    """``module`` applied to each tower's channels on their own (the paper's LRN never sums
    squares across the two GPUs)."""

    def __init__(self, module: nn.Module, towers: int):
        super().__init__()
        self.module, self.towers = module, towers

    def forward(self, x):
        return torch.cat([self.module(part) for part in x.chunk(self.towers, dim=1)], dim=1)


def _norm(kind: str, name: str, channels: int, towers: int = 1) -> list[tuple[str, nn.Module]]:
    if kind == "lrn":
        # The paper divides by (k + alpha * sum of squares)^beta; PyTorch uses alpha / size, so the
        # paper's alpha of 1e-4 over 5 channels is 5e-4 here.
        lrn = nn.LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0)
        return [(name, lrn if towers == 1 else PerTower(lrn, towers))]
    if kind == "batch":
        return [(name, nn.BatchNorm2d(channels))]
    return []


def _pool(name: str) -> tuple[str, nn.Module]:
    return name, nn.MaxPool2d(kernel_size=3, stride=2)  # overlapping: the window is wider than the stride


class AlexNet2012(nn.Module):
    def __init__(self, num_classes: int = 1000, in_channels: int = 3, norm: str = "lrn", dropout: float = 0.5,
                 groups: int = 1):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        if type(groups) is not int or groups not in GROUPS:  # True and 2.0 compare equal to 1 and 2
            raise ValueError(f"groups must be 1 (one tower) or 2 (the paper's two towers), got {groups!r}")
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(in_channels, 96, kernel_size=11, stride=4)), ("relu1", nn.ReLU(inplace=True)),
            *_norm(norm, "norm1", 96, groups), _pool("pool1"),
            ("conv2", nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=groups)), ("relu2", nn.ReLU(inplace=True)),
            *_norm(norm, "norm2", 256, groups), _pool("pool2"),
            ("conv3", nn.Conv2d(256, 384, kernel_size=3, padding=1)), ("relu3", nn.ReLU(inplace=True)),
            ("conv4", nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=groups)), ("relu4", nn.ReLU(inplace=True)),
            ("conv5", nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=groups)), ("relu5", nn.ReLU(inplace=True)),
            _pool("pool3"),
        ]))
        self.classifier = nn.Sequential(OrderedDict([
            ("fc6", nn.Linear(256 * 6 * 6, 4096)), ("relu6", nn.ReLU(inplace=True)), ("drop6", nn.Dropout(dropout)),
            ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU(inplace=True)), ("drop7", nn.Dropout(dropout)),
            ("fc8", nn.Linear(4096, num_classes)),
        ]))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The paper's initialisation: weights N(0, 0.01), drawn layer by layer in order; biases 1
        in conv2, conv4, conv5, fc6 and fc7, else 0."""
        for name, module in self.named_modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(module.weight, 0.0, 0.01)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 1.0 if name.rpartition(".")[2] in BIASES_AT_ONE else 0.0)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))
