"""Built-in datasets: the digits cnnkit ships, and the standard sets torchvision reads by name.
Any folder in ImageFolder layout works too: pass its path as ``--data``."""

from cnnkit import hookimpl

NAMED = {
    "mnist": ("MNIST handwritten digits: 60,000 + 10,000 28x28 grayscale", 10),
    "fashion-mnist": ("Fashion-MNIST clothing (Zalando): 60,000 + 10,000 28x28 grayscale", 10),
    "kmnist": ("Kuzushiji-MNIST cursive Japanese: 60,000 + 10,000 28x28 grayscale", 10),
    "cifar10": ("CIFAR-10 colour photos: 50,000 + 10,000 32x32", 10),
    "cifar100": ("CIFAR-100 colour photos: 50,000 + 10,000 32x32", 100),
    "svhn": ("SVHN house-number digits: 73,257 + 26,032 32x32 colour (needs scipy)", 10),
}
"""Names, listing help and class counts of :data:`cnnkit.data.named.KNOWN` (kept here so listing
them imports nothing heavy)."""


def digits(request):
    from cnnkit.data.digits import load_digits

    return load_digits(request)


def _named(name: str):
    def factory(request):
        from cnnkit.data.named import load_named

        return load_named(name, request)

    factory.__name__ = name.replace("-", "_")
    return factory


@hookimpl
def register_datasets(register):
    register(
        "digits",
        digits,
        help="UCI handwritten digits shipped with cnnkit: 1,797 8x8 images, 10 classes, fixed train/val/test split",
        classes=10,
    )
    for name, (help, classes) in NAMED.items():
        register(name, _named(name), help=f"{help}, via torchvision (downloaded into --data-dir)", classes=classes)
