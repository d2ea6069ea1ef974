"""The classic two-convolution MNIST network from the PyTorch and Keras tutorials."""

from torch import nn


class MnistCNN(nn.Sequential):
    """conv3x3(32)-ReLU-maxpool2, conv3x3(64)-ReLU-maxpool2, linear(7*7*64 -> classes) for 28x28 input."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__(
            nn.Conv2d(in_channels, 32, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(7 * 7 * 64, num_classes),
        )
