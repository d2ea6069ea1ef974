"""Built-in datasets. Any folder in ImageFolder layout works too: pass its path as ``--data``."""

from cnnkit import hookimpl


def digits(**options):
    from cnnkit.data.digits import load_digits

    return load_digits(**options)


@hookimpl
def register_datasets(register):
    register(
        "digits",
        digits,
        help="UCI handwritten digits shipped with cnnkit: 1,797 8x8 images, 10 classes, fixed train/val/test split",
        classes=10,
    )
