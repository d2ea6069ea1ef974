"""``--model-kwargs`` checked against what the model's factory takes, before anything is built.

The names a factory accepts come from its signature. Where it passes ``**kwargs`` on to the class
its return annotation names (torchvision's and timm's builders do), that class's ``__init__``
counts too; a factory whose ``**kwargs`` lead nowhere visible accepts any name. cnnkit's own
wrappers for torchvision and timm are looked through to the library's builder. Values are
checked against the annotations, strictly (``True`` is not a whole number, ``2.0`` is not one of
``Literal[1, 2]``): ``bool``, ``int``, ``float``, ``str``, tuples and lists (and their items),
``Optional``, ``Union`` and ``Literal``; others are not checked. A value the factory itself
refuses when the model is built (``dropout=1.5``) is a usage error too: :func:`blaming_kwargs`.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cnnkit.errors import UsageError
from cnnkit.registry import Entry, suggest

FROM_DATA = ("num_classes", "in_channels")
"""Set from the data: the number of classes and of image channels."""
FROM_DATA_IN = {"timm_model": ("in_chans",)}
"""The library's own name for the channel count, which cnnkit's wrapper passes."""
SET_BY_CNNKIT = {"torchvision_model": ("weights", "progress"), "timm_model": ("pretrained", "model_name")}
"""Arguments cnnkit's library wrappers pass themselves: models are built with random weights."""
SHOWN = 10
LIBRARY_BUILDERS = {
    "cnnkit.models.library:torchvision_model": "torchvision_model",
    "cnnkit.models.library:timm_model": "timm_model",
}
"""The references (``cnnkit.contracts.Reference``) the built-in torchvision models and the timm
family are registered with, a model name bound first: their keywords are the library builder's."""


@dataclass
class Accepted:
    """What a model factory takes: its keyword parameters, and whether it takes any name."""

    params: dict[str, inspect.Parameter] = field(default_factory=dict)
    any_name: bool = False
    fixed: tuple[str, ...] = ()
    from_data: tuple[str, ...] = FROM_DATA


def check_model_kwargs(entry: Entry, kwargs: dict[str, Any]) -> None:
    """Refuse (exit 2) a keyword the factory of ``entry`` does not take, or a value of the wrong type."""
    if not kwargs:
        return
    accepted = accepted_kwargs(entry)
    for key, value in kwargs.items():
        if key in accepted.fixed:
            raise UsageError(f"--model-kwargs cannot set '{key}' of {entry.name}: cnnkit builds it with random weights "
                             f"(use 'cnnkit finetune --backbone {entry.name}' for pretrained ones).")
        if key in accepted.from_data:
            raise UsageError(f"--model-kwargs cannot set {key}: it comes from the data.")
        if key not in accepted.params:
            if not accepted.any_name:
                raise UsageError(unknown_kwarg(entry.name, key, accepted))
            continue
        expected = describe_mismatch(accepted.params[key], value)
        if expected:
            raise UsageError(f"--model-kwargs: '{key}' of {entry.name} must be {expected}, got {value!r}.")


def unknown_kwarg(model: str, key: str, accepted: Accepted) -> str:
    settable = [name for name, param in accepted.params.items()
                if name not in accepted.from_data + accepted.fixed and param.default is not inspect.Parameter.empty]
    if not settable:
        return (f"--model-kwargs: {model} takes no argument '{key}'; it takes none but num_classes and "
                "in_channels, which come from the data.")
    close = suggest(key, settable)
    hint = f" Did you mean {' or '.join(repr(name) for name in close)}?" if close else ""
    shown = ", ".join(_shown(accepted.params[name]) for name in settable[:SHOWN])
    more = f", ... ({len(settable)} in all)" if len(settable) > SHOWN else ""
    return f"--model-kwargs: {model} takes no argument '{key}'.{hint} It takes ({shown}{more})."


def _shown(param: inspect.Parameter) -> str:
    default = param.default
    if callable(default) or len(repr(default)) > 20:
        return param.name
    return f"{param.name}={default!r}"


def accepted_kwargs(entry: Entry) -> Accepted:
    """The keywords ``entry``'s factory takes (looking through cnnkit's library builders)."""
    factory, leading = _unwrap_partial(entry.factory)
    function = LIBRARY_BUILDERS.get(getattr(factory, "target", ""))
    if function is None:
        return _collect([factory])
    name = leading[0] if leading else ""
    targets = _library_targets(function, name)
    if targets is None:
        return Accepted(any_name=True)
    accepted = _collect(targets)
    accepted.fixed = SET_BY_CNNKIT.get(function, ())
    accepted.from_data = FROM_DATA + FROM_DATA_IN.get(function, ())
    return accepted


def _unwrap_partial(factory: Callable[..., Any]) -> tuple[Callable[..., Any], tuple]:
    leading: tuple = ()
    while isinstance(factory, functools.partial):
        leading = tuple(factory.args) + leading
        factory = factory.func
    return factory, leading


def _library_targets(function: str, name: str) -> list[Callable[..., Any]] | None:
    """The library callables whose parameters a cnnkit library wrapper's keywords reach."""
    try:
        if function == "torchvision_model":
            from torchvision.models import get_model_builder

            return [get_model_builder(name)]
        if function == "timm_model":
            import timm
            from timm.models import model_entrypoint

            return [timm.create_model, model_entrypoint(name.split(".")[0])]
    except Exception:  # an unknown or broken builder: let building it say what is wrong
        return None
    return None


def _collect(chain: list[Callable[..., Any]]) -> Accepted:
    """Keyword parameters along ``chain`` (each passes its ``**kwargs`` to the next), then along
    the classes the last one's ``**kwargs`` reach."""
    accepted = Accepted()
    target: Callable[..., Any] | None = chain[-1]
    seen: set[Any] = set()
    while target is not None and target not in seen:  # the model's own parameters first, as shown
        seen.add(target)
        target = _add_parameters(accepted, target)
    for target in chain[:-1]:
        _add_parameters(accepted, target, follow=False)
    return accepted


def _add_parameters(accepted: Accepted, target: Callable[..., Any], follow: bool = True) -> Callable[..., Any] | None:
    """Add ``target``'s keyword parameters; with ``follow``, return the class ``__init__`` its
    ``**kwargs`` go to, if its return annotation names one (else it takes any name)."""
    signature = _signature(target)
    if signature is None:
        accepted.any_name = accepted.any_name or follow
        return None
    forwards = False
    for param in signature.parameters.values():
        if param.kind is param.VAR_KEYWORD:
            forwards = True
        elif param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY) and param.name != "self":
            accepted.params.setdefault(param.name, param)
    if not forwards or not follow:
        return None
    made = signature.return_annotation
    if inspect.isclass(made) and made.__init__ is not object.__init__:
        return made.__init__
    accepted.any_name = True
    return None


def _signature(target: Callable[..., Any]) -> inspect.Signature | None:
    for eval_str in (True, False):
        try:
            return inspect.signature(target, eval_str=eval_str)
        except (NameError, TypeError, ValueError, SyntaxError, AttributeError):
            continue
    return None


def describe_mismatch(param: inspect.Parameter, value: Any) -> str | None:
    """What ``param`` expects, when ``value`` does not fit its annotation; None when it fits
    (or the annotation says nothing checkable)."""
    annotation = param.annotation
    if annotation is inspect.Parameter.empty or (value is None and param.default is None):
        return None
    expected = _expectation(annotation)
    if expected is None:
        return None
    fits, noun = expected
    return None if fits(value) else noun


NOUNS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
Expectation = tuple[Callable[[Any], bool], str]
"""``(fits, noun)``: whether a value fits an annotation, and what the annotation asks for."""


def _expectation(annotation: Any) -> Expectation | None:
    """``(fits, noun)`` for an annotation this module can check, else None."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in NOUNS:
        return _fits(annotation), NOUNS[annotation]
    if annotation in (tuple, list) or origin in (tuple, list) or getattr(origin, "__name__", "") == "Sequence":
        return _sequence(origin, args)
    if origin is typing.Literal:
        return (lambda value: any(_same(value, arg) for arg in args)), "one of " + ", ".join(repr(arg) for arg in args)
    if origin is typing.Union or type(annotation).__name__ == "UnionType":
        return _union(args)
    return None


def _union(args: tuple) -> Expectation | None:
    """``Union[...]`` and ``X | Y``: fits when a member fits (None when a member is unchecked)."""
    members = [arg for arg in args if arg is not type(None)]
    found = [_expectation(member) for member in members]
    parts = [part for part in found if part is not None]
    if len(parts) < len(found):
        return None
    optional = len(members) < len(args)
    nouns = [noun for _, noun in parts] + (["None"] if optional else [])
    return (lambda value: (optional and value is None) or any(fits(value) for fits, _ in parts)), " or ".join(nouns)


def _same(value: Any, choice: Any) -> bool:
    """``value`` is ``choice`` by type and value: ``True`` and ``2.0`` are not ``1`` and ``2``."""
    return type(value) is type(choice) and value == choice


def _sequence(origin: Any, args: tuple) -> Expectation:
    """A tuple or list, each item checked where the annotation says what the items are
    (``tuple[int, ...]``, ``list[bool]``, ``tuple[int, int]``)."""
    items = [_expectation(arg) for arg in args if arg is not Ellipsis]
    parts = [part for part in items if part is not None]
    if not parts or len(parts) < len(items):
        return _is_sequence, "a tuple"
    if origin is tuple and args[-1] is not Ellipsis:
        return _tuple_of(parts)
    fits, noun = parts[0]
    return (lambda value: _is_sequence(value) and all(fits(item) for item in value)), f"a tuple of {_plural(noun)}"


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (tuple, list))


def _tuple_of(parts: list[Expectation]) -> Expectation:
    """A tuple of a fixed length, item by item (``tuple[int, int]``)."""
    nouns = ", ".join(noun for _, noun in parts)

    def fits(value: Any) -> bool:
        return _is_sequence(value) and len(value) == len(parts) and all(check(item) for (check, _), item in zip(parts, value))

    return fits, f"a tuple of {len(parts)} ({nouns})"


def _plural(noun: str) -> str:
    return {"true or false": "true or false values", "a whole number": "whole numbers", "a number": "numbers"}.get(noun, noun)


def blaming_kwargs(entry: Entry, given: dict[str, Any]) -> Entry:
    """``entry`` whose factory, when it refuses the values of ``--model-kwargs`` (a ``ValueError``
    or ``TypeError`` that building without them does not raise), raises a usage error naming them."""
    if not given:
        return entry
    factory = entry.factory

    def build(*args: Any, **kwargs: Any) -> Any:
        try:
            return factory(*args, **kwargs)
        except (ValueError, TypeError) as exc:
            if not _builds_without(factory, args, kwargs, given):
                raise
            shown = ",".join(f"{key}={value!r}" for key, value in given.items())
            lines = str(exc).strip().splitlines()
            reason = lines[0].rstrip(".") if lines else type(exc).__name__
            raise UsageError(f"--model-kwargs {shown}: {entry.name} cannot be built with "
                             f"{'it' if len(given) == 1 else 'them'}: {reason}.") from exc

    return dataclasses.replace(entry, factory=build)


def _builds_without(factory: Callable[..., Any], args: tuple, kwargs: dict[str, Any], given: dict[str, Any]) -> bool:
    """Whether the factory builds the model when the ``--model-kwargs`` are left out: then they are
    what it refused."""
    try:
        factory(*args, **{key: value for key, value in kwargs.items() if key not in given})
    except Exception:
        return False
    return True


def _fits(kind: type) -> Callable[[Any], bool]:
    if kind is float:
        return lambda value: isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return lambda value: isinstance(value, int) and not isinstance(value, bool)
    return lambda value: isinstance(value, kind)
