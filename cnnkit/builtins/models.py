"""Built-in models: the architectures cnnkit implements itself (``cnnkit/models/``), torchvision's
and timm's. Factories are references, imported only when a model is built.

Each entry records its native ``input_size`` (channels, height, width) and ``params``, its
parameter count at its native number of classes (10, or 1000 for AlexNet).
"""

from functools import partial

from cnnkit import hookimpl
from cnnkit.contracts import ModelRegister, Reference

CIFAR_RESNET_PARAMS = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962}


@hookimpl
def register_models(register: ModelRegister) -> None:
    register(
        "mnist-cnn",
        "cnnkit.models.mnist_cnn:MnistCNN",
        help="Two-conv MNIST CNN (32 and 64 3x3 filters, ReLU, max-pool), 28x28 input",
        input_size=(1, 28, 28),
        params=50_186,
    )
    register(
        "mnist-cnn2",
        "cnnkit.models.mnist_cnn2:MnistCNN2",
        help="Three-conv MNIST CNN (32, 64, 128 filters), 625 hidden units, dropout 0.2; 28x28 input",
        input_size=(1, 28, 28),
        params=1_379_557,
    )
    register(
        "alexnet-2012",
        "cnnkit.builtins.architectures:alexnet_2012",
        help="AlexNet (Krizhevsky et al. 2012), one-tower variant: LRN, overlapping pooling, dropout; 227x227; "
             "--model-kwargs groups=2 for the paper's two towers (60,965,224 parameters)",
        input_size=(3, 227, 227),
        params=62_378_344,
    )
    for depth, params in CIFAR_RESNET_PARAMS.items():
        register(
            f"resnet{depth}",
            partial(Reference("cnnkit.builtins.architectures:cifar_resnet"), depth),
            help=f"CIFAR ResNet-{depth} (He et al. 2016, sec. 4.2): 6n+2 layers, option-A shortcuts; 32x32",
            input_size=(3, 32, 32),
            params=params,
        )
    register_library(register)


def register_library(register: ModelRegister) -> None:
    """torchvision's models by name (found without importing torchvision), and timm's as a family."""
    from cnnkit.models.library import torchvision_models

    try:
        library = torchvision_models()
    except Exception as exc:  # a broken torchvision install must not take cnnkit's own models with it
        from cnnkit.contracts import warn

        warn(f"torchvision's models are not listed: {type(exc).__name__}: {exc}")
        library = {}
    build = Reference("cnnkit.models.library:torchvision_model")
    load = Reference("cnnkit.transfer.pretrained:torchvision_pretrained")
    for name, (channels, height, width) in library.items():
        register(name, partial(build, name), help="torchvision model (random initialisation)",
                 input_size=(channels, height, width), pretrained=partial(load, name))
    register("timm/*", "cnnkit.models.library:timm_model",
             help="any timm model, e.g. timm/resnet18; list them with: cnnkit models 'timm/*'",
             lister="cnnkit.models.library:timm_names", describe="cnnkit.models.library:timm_metadata",
             member_help="timm model (random initialisation)")
