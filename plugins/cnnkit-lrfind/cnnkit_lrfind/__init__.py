"""cnnkit plugin registering the command ``cnnkit lr-find``. Importing it imports no torch; the
command's module is imported only when the command runs or shows its help."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnnkit import hookimpl

if TYPE_CHECKING:
    from cnnkit.contracts import CommandRegister

__version__ = "0.1.0"
CNNKIT_API = ">=1.0,<2"


@hookimpl
def register_commands(register: CommandRegister) -> None:
    register("lr-find", "cnnkit_lrfind.command:lr_find",
             help="Learning-rate range test (fastai's lr_find) and a suggested rate")
