"""cnnkit plugin registering LeNet-5. Importing it must not import torch; the factory does."""

from cnnkit import hookimpl

__version__ = "0.1.0"


def lenet5(*, num_classes: int = 10, in_channels: int = 1):
    from cnnkit_lenet5.model import LeNet5

    return LeNet5(num_classes=num_classes, in_channels=in_channels)


@hookimpl
def register_models(register):
    register(
        "lenet5",
        lenet5,
        help="LeNet-5 (LeCun et al. 1998): tanh, average pooling, 32x32 input",
        input_size=(1, 32, 32),
    )
