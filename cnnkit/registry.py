"""Registries of named factories, one per kind (models, datasets, ...).

An entry remembers which plugin registered it. The first registration of a name wins; a later
one is refused with an error naming both plugins, so the outcome never depends on chance.

A *family* is registered under a name ending in ``/*`` (``timm/*``) with two metadata callables:
``lister()`` gives the member names (without the prefix) and ``describe(member)`` their metadata.
Members are enumerated only when asked for by name or by a pattern that starts with the prefix,
so a family of thousands costs nothing until used; ``factory(member, **kwargs)`` builds one.
"""

from __future__ import annotations

import difflib
import functools
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from cnnkit.errors import UsageError

KIND_NOUNS = {
    "models": "model",
    "datasets": "dataset",
    "augmentations": "augmentation",
    "initializers": "initializer",
    "strategies": "strategy",
    "commands": "command",
}


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    help: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def create(self, *args: Any, **kwargs: Any) -> Any:
        return self.factory(*args, **kwargs)


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
        from cnnkit.plugins import unloaded_plugins_note

        message += unloaded_plugins_note(name)
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
        return [prefix + member for member in family.metadata["lister"]()]

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
        return Entry(self.kind, name, functools.partial(family.factory, member), family.plugin,
                     family.metadata.get("member_help", family.help), dict(family.metadata["describe"](member)))

    def entries(self, pattern: str | None = None) -> list[Entry]:
        return [self._entries.get(n) or self._member(self._family(n), n) for n in self.names(pattern)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries or (isinstance(name, str) and self._family(name) is not None)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries())

    def __len__(self) -> int:
        return len(self._entries)
