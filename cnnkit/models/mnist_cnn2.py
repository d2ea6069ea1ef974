"""The deeper MNIST CNN: three conv blocks, then 625 hidden units."""

from torch import nn


def _block(in_channels: int, out_channels: int, pool_padding: int = 0) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, padding=pool_padding),
    ]


class MnistCNN2(nn.Sequential):
    """conv3x3(32), conv3x3(64), conv3x3(128), each ReLU + max-pool 2 (the last padded, so 7x7 becomes
    4x4), linear 4*4*128 -> 625, ReLU, dropout 0.2, linear 625 -> classes, for 28x28 input."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, dropout: float = 0.2):
        super().__init__(
            *_block(in_channels, 32),
            *_block(32, 64),
            *_block(64, 128, pool_padding=1),
            nn.Flatten(),
            nn.Linear(4 * 4 * 128, 625),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(625, num_classes),
        )
