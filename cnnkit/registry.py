"""Registries of named factories, one per kind (models, datasets, ...).

An entry remembers which plugin registered it. The first registration of a name wins; a later
one is refused with an error naming both plugins, so the outcome never depends on chance.

This is also the one place where what a plugin hands over is checked: :func:`make_entry` refuses
a bad name, a factory that is neither callable nor a ``"package.module:attribute"`` reference,
and metadata keys the kind's ``Register`` protocol (``cnnkit.contracts``) does not name;
:meth:`Entry.create` calls the factory and checks what it returns, and the metadata callables
(``batched``, ``pretrained``, a family's ``lister`` and ``describe`` ...) are checked the same way.
Every failure names the entry and its plugin.

A *family* is registered under a name ending in ``/*`` (``timm/*``) with two metadata callables:
``lister()`` gives the member names (without the prefix) and ``describe(member)`` their metadata.
Members are enumerated only when asked for by name or by a pattern that starts with the prefix,
so a family of thousands costs nothing until used; ``factory(member, **kwargs)`` builds one.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cnnkit.contracts._api import REGISTERS
from cnnkit.contracts._registration import Reference
from cnnkit.entry_checks import CALLABLE_METADATA, RETURNS, not_text
from cnnkit.errors import CnnkitError, UsageError

KIND_NOUNS = {
    "models": "model",
    "datasets": "dataset",
    "augmentations": "augmentation",
    "initializers": "initializer",
    "strategies": "strategy",
    "commands": "command",
    "callbacks": "callback",
}
STAGES = ("sample", "batch", "preset")


def guarded(entry: Entry, call: Callable[[], Any]) -> Any:
    """``call()`` (which runs plugin code for ``entry``), with any failure naming the entry and plugin;
    cnnkit's own errors (a plugin may raise them to be shown as they are) pass unchanged."""
    try:
        return call()
    except (CnnkitError, KeyboardInterrupt):
        raise
    except BaseException as exc:  # sys.exit() in a plugin is a failing plugin, not the end of cnnkit
        if entry.kind == "commands":
            raise CnnkitError(f"{entry.describe()} failed to load: {type(exc).__name__}: {exc}") from exc
        raise CnnkitError(
            f"{entry.describe()} failed: {type(exc).__name__}: {exc} (run with --debug for the traceback)"
        ) from exc


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    help: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """How messages name it: ``model 'lenet5' of plugin 'lenet5'``."""
        return f"{KIND_NOUNS.get(self.kind, self.kind)} '{self.name}' of plugin '{self.plugin}'"

    def create(self, *args: Any, **kwargs: Any) -> Any:
        """The factory's product, checked to be what the kind's contract says it returns."""
        made = guarded(self, lambda: self._make(args, kwargs))
        check = not_text if self.metadata.get("stage") == "preset" else RETURNS.get(self.kind)
        problem = check(made) if check is not None else ""
        if problem:
            raise CnnkitError(f"{self.describe()} returned {type(made).__name__}, {problem}.")
        return made

    def _make(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.kind == "commands" and isinstance(self.factory, Reference):
            import click

            target = self.factory.resolve()
            if isinstance(target, click.Command):  # a command's reference may name the command itself
                return target
        return self.factory(*args, **kwargs)


class PluginCallable:
    """A metadata callable of an entry (``batched``, ``pretrained`` ...): failures and a wrong
    return value name the entry and the plugin, as the entry's factory does."""

    def __init__(self, entry: Entry, function: Callable[..., Any], key: str, check: Callable[[object], str] | None):
        self.entry = entry
        self.function = function
        self.key = key
        self.check = check

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        made = guarded(self.entry, lambda: self.function(*args, **kwargs))
        problem = self.check(made) if self.check is not None else ""
        if problem:
            raise CnnkitError(f"{self.entry.describe()}: its {self.key} returned {type(made).__name__}, {problem}.")
        return made

    def __repr__(self) -> str:
        return f"PluginCallable({self.key}={self.function!r})"


@functools.cache
def metadata_keys(kind: str) -> tuple[str, ...]:
    """The metadata a kind's entries may carry: the keyword parameters of its ``Register`` protocol."""
    parameters = inspect.signature(REGISTERS[kind].__call__).parameters.values()
    return tuple(p.name for p in parameters if p.kind is p.KEYWORD_ONLY and p.name != "help")


def callable_or_reference(value: object, what: str) -> Callable[..., Any]:
    """``value`` as a callable: a ``"package.module:attribute"`` string becomes a lazy :class:`Reference`."""
    if isinstance(value, str):
        try:
            return Reference(value)
        except ValueError:
            raise ValueError(f"{what} {value!r} is not a reference of the form 'package.module:attribute'") from None
    if not callable(value):
        raise TypeError(f"{what} is not callable")
    return value


def first_doc_line(factory: object) -> str:
    """The first line of a function's or class's own docstring ("" for references and partials)."""
    if not (inspect.isfunction(factory) or inspect.isclass(factory) or inspect.ismethod(factory)):
        return ""
    doc = (factory.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def make_entry(kind: str, name: object, factory: object, plugin: str, help: object = "",
               metadata: Mapping[str, Any] | None = None) -> Entry:
    """The entry a ``register(name, factory, help=..., **metadata)`` call asks for, or the error
    (raised inside the plugin's hook, which is then reported and its entries dropped)."""
    noun = KIND_NOUNS[kind]
    if not isinstance(name, str) or not name or any(c.isspace() or not c.isprintable() for c in name):
        raise ValueError(f"{noun} name must be a non-empty string without spaces, got {name!r}")
    made = callable_or_reference(factory, f"factory for {noun} '{name}'")
    if not isinstance(help, str):
        raise TypeError(f"help of {noun} '{name}' must be text, got {type(help).__name__}")
    values = checked_metadata(kind, name, metadata or {})
    return bound(Entry(kind, name, made, plugin, help or first_doc_line(factory), values))


def checked_metadata(kind: str, name: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` without the keys left at None, its references made callables; an unknown key or
    a value that cannot work raises, naming the entry (and the valid keys)."""
    noun = KIND_NOUNS[kind]
    refuse_unknown_keys(kind, name, given)
    values = {key: value for key, value in given.items() if value is not None}
    for key in CALLABLE_METADATA.get(kind, {}):
        if key in values:
            values[key] = callable_or_reference(values[key], f"{key} of {noun} '{name}'")
    if kind == "models" and name.endswith("/*") and not ("lister" in values and "describe" in values):
        raise ValueError(f"family '{name}' needs lister= and describe= callables")
    if kind == "augmentations":
        check_augmentation_metadata(name, values)
    return values


def refuse_unknown_keys(kind: str, name: str, given: Mapping[str, Any]) -> None:
    """A ``TypeError`` naming the keys of ``given`` that the kind's ``Register`` protocol does not take."""
    noun, valid = KIND_NOUNS[kind], metadata_keys(kind)
    unknown = [key for key in given if key not in valid]
    if not unknown:
        return
    close = suggest(unknown[0], list(valid))
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    takes = f"{', '.join(valid)} (and help)" if valid else "none besides help"
    shown = ", ".join(f"'{key}'" for key in unknown)
    raise TypeError(f"unknown metadata {shown} for {noun} '{name}'{hint}; a {noun} takes {takes}")


def check_augmentation_metadata(name: str, values: Mapping[str, Any]) -> None:
    """A ``ValueError`` for an augmentation's stage, preset spec or eval crop that cannot work."""
    stage = values.get("stage", "sample")
    if stage not in STAGES:
        raise ValueError(f"stage of augmentation '{name}' must be one of {', '.join(STAGES)}, got {stage!r}")
    if stage == "preset" and not isinstance(values.get("spec"), str):
        raise ValueError(f"preset '{name}' needs spec= (its operations, e.g. 'hflip, rotation(10)')")
    if "eval_crop" in values and not isinstance(values.get("eval_crop_source"), str):
        raise ValueError(f"eval_crop of augmentation '{name}' needs eval_crop_source= (where the number comes from)")


def bound(entry: Entry) -> Entry:
    """``entry`` with its metadata callables wrapped to name it when they fail (in place)."""
    metadata = entry.metadata
    assert isinstance(metadata, dict)
    for key, check in CALLABLE_METADATA.get(entry.kind, {}).items():
        if key in metadata and not isinstance(metadata[key], PluginCallable):
            metadata[key] = PluginCallable(entry, metadata[key], key, check)
    return entry


class DuplicateNameError(ValueError):
    def __init__(self, existing: Entry, plugin: str):
        noun = KIND_NOUNS.get(existing.kind, existing.kind)
        super().__init__(f"{noun} '{existing.name}' of plugin '{plugin}' is already registered by plugin '{existing.plugin}'")
        self.existing = existing
        self.plugin = plugin


def suggest(name: str, choices: list[str], n: int = 3, cutoff: float = 0.6, spread: float = 0.15) -> list[str]:
    """Close matches for a misspelt name, best first: those nearly as close as the best one."""
    scored = []
    for choice in choices:
        ratio = difflib.SequenceMatcher(None, name.lower(), choice.lower()).ratio()
        if ratio >= cutoff:
            scored.append((-ratio, choice))
    scored.sort()
    if not scored:
        return []
    best = -scored[0][0]
    return [choice for negative, choice in scored[:n] if -negative >= best - spread]


def _no_unloaded_plugins(name: str) -> str:
    return ""


_unloaded_plugins_note: Callable[[str], str] = _no_unloaded_plugins
"""For an unknown name: which installed plugin, left unloaded, may provide it (else ""). Which
plugins were left unloaded is known to the plugin host, a layer up: ``cnnkit.plugins`` sets this
with :func:`note_unloaded_plugins_with` when it is imported, before it builds any registry."""


def note_unloaded_plugins_with(note: Callable[[str], str]) -> None:
    """Make :func:`unknown_name_message` end with ``note(name)`` for the names plugins register."""
    global _unloaded_plugins_note
    _unloaded_plugins_note = note


def unknown_name_message(noun: str, name: str, choices: list[str], list_hint: str) -> str:
    """``Unknown model 'x'. Did you mean 'y'?`` plus where to see every choice, on one line; for
    what plugins register, also whether third-party plugins were left unloaded."""
    close = suggest(name, choices)
    if close:
        options = " or ".join(f"'{c}'" for c in close)
        message = f"Unknown {noun} '{name}'. Did you mean {options}?"
    else:
        message = f"Unknown {noun} '{name}'. {list_hint}"
    if noun in KIND_NOUNS.values():
        message += _unloaded_plugins_note(name)
    return message


class UnknownNameError(UsageError):
    pass


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self.noun = KIND_NOUNS.get(kind, kind)
        self._entries: dict[str, Entry] = {}

    def add(self, entry: Entry) -> None:
        existing = self._entries.get(entry.name)
        if existing is not None:
            raise DuplicateNameError(existing, entry.plugin)
        self._entries[entry.name] = entry

    def _family(self, name: str) -> Entry | None:
        for family in self._entries.values():
            if family.name.endswith("/*") and name.startswith(family.name[:-1]) and name != family.name:
                return family
        return None

    def _members(self, family: Entry) -> list[str]:
        prefix = family.name[:-1]
        return [prefix + str(member) for member in family.metadata["lister"]()]

    def get(self, name: str) -> Entry:
        if name in self._entries and name.endswith("/*"):
            raise UnknownNameError(
                f"'{name}' is a family of {self.kind}: name one of them (list them with: cnnkit {self.kind} '{name}')."
            )
        if name in self._entries:
            return self._entries[name]
        family = self._family(name)
        if family is None:
            hint = f"Run 'cnnkit {self.kind}' to list the {len(self._entries)} available."
            raise UnknownNameError(unknown_name_message(self.noun, name, self.names(), hint))
        members = self._members(family)
        if name in members:
            return self._member(family, name)
        hint = f"Run: cnnkit {self.kind} '{family.name}'"
        raise UnknownNameError(unknown_name_message(self.noun, name, members, hint))

    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted names, optionally filtered by a shell-style wildcard (``resnet*``). A family shows
        as ``prefix/*`` unless the pattern starts with its prefix; then its members are listed."""
        names = set(self._entries)
        if pattern:
            for family in [e for e in self._entries.values() if e.name.endswith("/*")]:
                if pattern.lower().startswith(family.name[:-1].lower()):
                    names.discard(family.name)
                    names.update(self._members(family))
            names = {n for n in names if fnmatch.fnmatchcase(n.lower(), pattern.lower())}
        return sorted(names)

    def _member(self, family: Entry, name: str) -> Entry:
        member = name[len(family.name) - 1:]
        described = family.metadata["describe"](member)
        try:
            values = checked_metadata(self.kind, name, described)
        except (TypeError, ValueError) as exc:
            raise CnnkitError(f"{family.describe()}: its describe('{member}') gave {exc}") from None
        return bound(Entry(self.kind, name, functools.partial(family.factory, member), family.plugin,
                           family.metadata.get("member_help", family.help), values))

    def entries(self, pattern: str | None = None) -> list[Entry]:
        found = []
        for name in self.names(pattern):
            entry = self._entries.get(name)
            if entry is None:
                family = self._family(name)
                assert family is not None
                entry = self._member(family, name)
            found.append(entry)
        return found

    def __contains__(self, name: object) -> bool:
        return name in self._entries or (isinstance(name, str) and self._family(name) is not None)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries())

    def __len__(self) -> int:
        return len(self._entries)
