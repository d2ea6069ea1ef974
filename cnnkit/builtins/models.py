"""Built-in models: the architectures cnnkit implements itself (``cnnkit/models/``).

Each entry records its native ``input_size`` (channels, height, width) and ``params``, its
parameter count at its native number of classes (10, or 1000 for AlexNet).
"""

from typing import Literal

from cnnkit import hookimpl


def mnist_cnn(*, num_classes: int = 10, in_channels: int = 1):
    from cnnkit.models.mnist_cnn import MnistCNN

    return MnistCNN(num_classes=num_classes, in_channels=in_channels)


def mnist_cnn2(*, num_classes: int = 10, in_channels: int = 1, dropout: float = 0.2):
    from cnnkit.models.mnist_cnn2 import MnistCNN2

    return MnistCNN2(num_classes=num_classes, in_channels=in_channels, dropout=dropout)


def alexnet_2012(*, num_classes: int = 1000, in_channels: int = 3, norm: Literal["lrn", "batch", "none"] = "lrn",
                 dropout: float = 0.5, groups: Literal[1, 2] = 1):
    """``groups=2``: the paper's two towers (conv2, conv4, conv5 within each); 1: one tower."""
    from cnnkit.models.alexnet import AlexNet2012

    return AlexNet2012(num_classes=num_classes, in_channels=in_channels, norm=norm, dropout=dropout, groups=groups)


def _cifar_resnet(depth: int):
    def factory(*, num_classes: int = 10, in_channels: int = 3, shortcut: Literal["A", "B"] = "A"):
        from cnnkit.models.resnet import CifarResNet

        return CifarResNet(depth, num_classes=num_classes, in_channels=in_channels, shortcut=shortcut)

    factory.__name__ = f"resnet{depth}"
    return factory


def _library(function: str, *bound: str):
    """``cnnkit.models.library.<function>`` (with ``bound`` first arguments), imported when called."""

    def call(*args, **kwargs):
        from cnnkit.models import library

        return getattr(library, function)(*bound, *args, **kwargs)

    call.__name__ = bound[0] if bound else function
    return call


def _pretrained(kind: str, name: str):
    """``load(weights="")``: the library's pretrained model (``cnnkit.contracts.Pretrained``)."""

    def load(weights: str = ""):
        from cnnkit.transfer import pretrained

        return getattr(pretrained, f"{kind}_pretrained")(name, weights)

    return load


CIFAR_RESNET_PARAMS = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962}


@hookimpl
def register_models(register):
    register(
        "mnist-cnn",
        mnist_cnn,
        help="Two-conv MNIST CNN (32 and 64 3x3 filters, ReLU, max-pool), 28x28 input",
        input_size=(1, 28, 28),
        params=50_186,
    )
    register(
        "mnist-cnn2",
        mnist_cnn2,
        help="Three-conv MNIST CNN (32, 64, 128 filters), 625 hidden units, dropout 0.2; 28x28 input",
        input_size=(1, 28, 28),
        params=1_379_557,
    )
    register(
        "alexnet-2012",
        alexnet_2012,
        help="AlexNet (Krizhevsky et al. 2012), one-tower variant: LRN, overlapping pooling, dropout; 227x227; "
             "--model-kwargs groups=2 for the paper's two towers (60,965,224 parameters)",
        input_size=(3, 227, 227),
        params=62_378_344,
    )
    for depth, params in CIFAR_RESNET_PARAMS.items():
        register(
            f"resnet{depth}",
            _cifar_resnet(depth),
            help=f"CIFAR ResNet-{depth} (He et al. 2016, sec. 4.2): 6n+2 layers, option-A shortcuts; 32x32",
            input_size=(3, 32, 32),
            params=params,
        )
    from cnnkit.models.library import torchvision_models

    try:
        library = torchvision_models()
    except Exception as exc:  # a broken torchvision install must not take cnnkit's own models with it
        from cnnkit.console import warn

        warn(f"torchvision's models are not listed: {type(exc).__name__}: {exc}")
        library = {}
    for name, input_size in library.items():
        register(name, _library("torchvision_model", name), help="torchvision model (random initialisation)",
                 input_size=tuple(input_size), pretrained=_pretrained("torchvision", name))
    register("timm/*", _library("timm_model"), help="any timm model, e.g. timm/resnet18; list them with: cnnkit models 'timm/*'",
             lister=_library("timm_names"), describe=_library("timm_metadata"),
             member_help="timm model (random initialisation)")
