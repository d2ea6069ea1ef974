"""The command contract: ``factory() -> click.Command``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import click


class CommandFactory(Protocol):
    """Builds the command when cnnkit needs it: to run it, and to list it in ``cnnkit --help``
    (which builds every command for its short help), so keep the factory's module light and
    import torch inside the command's callback."""

    def __call__(self) -> click.Command: ...


class CommandRegister(Protocol):
    """The ``register`` that ``register_commands`` receives (commands take no metadata). A
    reference may name the ``click.Command`` itself (``"pkg.cli:hello"``) instead of a factory."""

    def __call__(self, name: str, factory: CommandFactory | str, *, help: str = "") -> None: ...
