"""LeNet-5 with its 1998 layer sizes; the trainable subsampling and the scaled tanh of the paper
are replaced by plain average pooling and tanh, as in most modern re-implementations."""

import torch
from torch import nn


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5),  # C1: 32x32 -> 28x28
            nn.Tanh(),
            nn.AvgPool2d(2),  # S2: -> 14x14
            nn.Conv2d(6, 16, kernel_size=5),  # C3: -> 10x10
            nn.Tanh(),
            nn.AvgPool2d(2),  # S4: -> 5x5
            nn.Conv2d(16, 120, kernel_size=5),  # C5: -> 1x1
            nn.Tanh(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(120, 84),  # F6
            nn.Tanh(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores: torch.Tensor = self.classifier(self.features(x))
        return scores
