"""How a factory is named lazily (:class:`Reference`), and what a hook wrapper sees (:class:`Registration`)."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REFERENCE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\Z")


class Reference:
    """A callable named ``"package.module:attribute"``, imported when it is first called.

    ``register(name, "package.module:attribute")`` makes one, so a plugin module registers
    factories without importing what they need (torch); the module is imported only when the
    entry is used. To bind leading arguments, wrap one in ``functools.partial``:
    ``partial(Reference("pkg.models:build"), "small")``. Its signature is the target's.
    """

    __slots__ = ("target", "_resolved")

    def __init__(self, target: str) -> None:
        if not isinstance(target, str) or not REFERENCE.match(target):
            raise ValueError(f"{target!r} is not a reference of the form 'package.module:attribute'")
        self.target = target
        self._resolved: Callable[..., Any] | None = None

    def resolve(self) -> Callable[..., Any]:
        """The callable it names, imported on the first call."""
        if self._resolved is None:
            module_name, _, path = self.target.partition(":")
            found: Any = importlib.import_module(module_name)
            for part in path.split("."):
                if not hasattr(found, part):
                    raise AttributeError(f"'{self.target}': {module_name} has no attribute '{path}'")
                found = getattr(found, part)
            if not callable(found):
                raise TypeError(f"'{self.target}' is {type(found).__name__}, not callable")
            self._resolved = found
        return self._resolved

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature | None:
        """The target's signature, annotations evaluated where they can be (for
        ``inspect.signature``); None when it cannot be imported."""
        try:
            target = self.resolve()
        except Exception:
            return None
        for eval_str in (True, False):
            try:
                return inspect.signature(target, eval_str=eval_str)
            except Exception:
                continue
        return None

    def __reduce__(self) -> tuple[type[Reference], tuple[str]]:
        return (Reference, (self.target,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reference) and other.target == self.target

    def __hash__(self) -> int:
        return hash(self.target)

    def __repr__(self) -> str:
        return f"Reference({self.target!r})"


@dataclass(frozen=True)
class Registration:
    """What one plugin's implementation of a hook registered: the list of these is what a hook
    wrapper (``@hookimpl(wrapper=True)``) gets from its ``yield``, one per implementation it wraps,
    in call order. ``names`` are those it registered (before first-registration-wins settles
    contested names); ``error`` says why all of them were dropped, if they were."""

    plugin: str
    names: tuple[str, ...]
    error: str = ""
