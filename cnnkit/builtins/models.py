"""Built-in models."""

from cnnkit import hookimpl


def mnist_cnn(*, num_classes: int = 10, in_channels: int = 1):
    from cnnkit.models.mnist_cnn import MnistCNN

    return MnistCNN(num_classes=num_classes, in_channels=in_channels)


@hookimpl
def register_models(register):
    register(
        "mnist-cnn",
        mnist_cnn,
        help="Two-conv MNIST CNN (32 and 64 3x3 filters, ReLU, max-pool), 28x28 input",
        input_size=(1, 28, 28),
    )
