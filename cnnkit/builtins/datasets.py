"""Built-in datasets: the digits cnnkit ships, and the standard sets torchvision reads by name.
Any folder in ImageFolder layout works too: pass its path as ``--data``."""

from functools import partial

from cnnkit import hookimpl
from cnnkit.contracts import DatasetRegister, Reference

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


@hookimpl
def register_datasets(register: DatasetRegister) -> None:
    register(
        "digits",
        "cnnkit.data.digits:load_digits",
        help="UCI handwritten digits shipped with cnnkit: 1,797 8x8 images, 10 classes, fixed train/val/test split",
        classes=10,
    )
    for name, (help, classes) in NAMED.items():
        register(name, partial(Reference("cnnkit.data.named:load_named"), name),
                 help=f"{help}, via torchvision (downloaded into --data-dir)", classes=classes)
