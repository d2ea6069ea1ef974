"""What each kind's factory (and each metadata callable) must return, as checks that give the
problem in a few words, or "" when the value is fine. :mod:`cnnkit.registry` applies them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from cnnkit.contracts._callbacks import RunCallback
from cnnkit.contracts._data import DataSplitsLike
from cnnkit.contracts._models import Pretrained
from cnnkit.contracts._strategies import Strategy


def _not_module(made: object) -> str:
    from torch import nn

    return "" if isinstance(made, nn.Module) else "not a torch.nn.Module"


def _not_splits(made: object) -> str:
    return "" if isinstance(made, DataSplitsLike) else "not cnnkit.contracts.DataSplits"


def _not_strategy(made: object) -> str:
    return "" if isinstance(made, Strategy) else "which lacks members of cnnkit.contracts.Strategy"


def _not_command(made: object) -> str:
    import click

    return "" if isinstance(made, click.Command) else "not a click command"


def _not_callback(made: object) -> str:
    missing = "which lacks members of cnnkit.contracts.RunCallback (subclass cnnkit.contracts.Callback)"
    return "" if isinstance(made, RunCallback) else missing


def _not_function(made: object) -> str:
    return "" if callable(made) else "not a function"


def not_text(made: object) -> str:
    return "" if isinstance(made, str) else "not a spec (text)"


def _not_pretrained(made: object) -> str:
    return "" if isinstance(made, Pretrained) else "not cnnkit.contracts.Pretrained"


def _not_names(made: object) -> str:
    ok = isinstance(made, Iterable) and not isinstance(made, (str, bytes))
    return "" if ok else "not a list of names"


def _not_mapping(made: object) -> str:
    return "" if isinstance(made, Mapping) else "not a mapping of metadata"


RETURNS: dict[str, Callable[[object], str]] = {
    "models": _not_module,
    "datasets": _not_splits,
    "augmentations": _not_function,
    "initializers": _not_function,
    "strategies": _not_strategy,
    "commands": _not_command,
    "callbacks": _not_callback,
}
"""What each kind's factory must return: a check giving the problem, or "" when it is fine."""

CALLABLE_METADATA: dict[str, dict[str, Callable[[object], str] | None]] = {
    "models": {"pretrained": _not_pretrained, "lister": _not_names, "describe": _not_mapping},
    "augmentations": {"batched": _not_function, "batched_when": None},
}
"""Metadata that are plugin callables (or references to them), with the check of what they return."""
