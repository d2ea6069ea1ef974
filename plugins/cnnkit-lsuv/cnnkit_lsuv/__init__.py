"""cnnkit plugin registering the initializer ``lsuv`` (Mishkin & Matas 2016), which needs a batch
of training images. Importing it imports no torch; the factory does."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnnkit import hookimpl

if TYPE_CHECKING:
    from cnnkit.contracts import BatchInitializer, InitializerRegister

__version__ = "0.1.0"
CNNKIT_API = ">=1.0,<2"

HELP = ("LSUV (Mishkin & Matas 2016): orthonormal weights, then each conv/linear layer in forward order "
        "scaled to output variance 1 on the first training batch (tolerance 0.1, at most 10 rescalings)")


def lsuv() -> BatchInitializer:
    from cnnkit_lsuv.algorithm import initialize

    return initialize


@hookimpl
def register_initializers(register: InitializerRegister) -> None:
    register("lsuv", lsuv, help=HELP, needs_batch=True)
