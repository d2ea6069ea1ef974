"""One strict rule per option value, shared by command-line flags, config files and the Python API.

A :class:`Rule` says an option's type (whole number, number, flag, text), its range, and whether it
may be empty (``null``). Flags are parsed from text and then checked; config files already hold
typed values (TOML, JSON) and are checked as they are, so ``epochs = 2.9`` or ``lr = true`` is
refused instead of being coerced. Numbers must be finite. A whole number written as a float
(``epochs = 1e3`` in TOML or JSON, ``--epochs 1e3``) is that whole number.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Any, NoReturn

import click

INVISIBLE = ("Cc", "Cf", "Zl", "Zp")
"""Unicode categories refused in text options: controls, format characters (such as the
right-to-left override) and line or paragraph separators."""

NOUNS = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}


@dataclass(frozen=True)
class Rule:
    kind: type
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    nullable: bool = False
    list_joins: bool = False
    """For text options that hold a comma-separated list: a list of strings is accepted too."""
    nonempty: bool = False
    choices: tuple[str, ...] = ()
    whole_as_text: bool = False
    """For text options that may be a plain number (``image_size = 32``): a whole number is its digits."""

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        noun = "text or a whole number" if self.whole_as_text else NOUNS[self.kind]
        bounds = []
        if self.min is not None:
            bounds.append(f"{'above' if self.min_open else 'at least'} {self._shown_bound(self.min)}")
        if self.max is not None:
            bounds.append(f"{'below' if self.max_open else 'at most'} {self._shown_bound(self.max)}")
        return noun + (" " + " and ".join(bounds) if bounds else "")

    def _shown_bound(self, bound: float) -> str:
        return str(int(bound)) if self.kind is int else f"{bound:g}"

    def check(self, value: Any) -> Any:
        """``value`` as this option's type, or ``ValueError`` saying what was expected."""
        if value is None and self.nullable:
            return None
        value = self._normalised(value)
        if not self._has_kind(value):
            raise ValueError(f"must be {self.describe()}, got {shown(value)}")
        if self.kind in (int, float):
            return self._checked_number(value)
        if self.kind is str:
            return self._checked_text(value)
        return value

    def _normalised(self, value: Any) -> Any:
        """A list of strings joined (list options), a whole number as its digits (size options)."""
        if self.kind is str and self.list_joins and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ",".join(value)
        if self.whole_as_text and (is_int(value) or whole_float(value)):
            return str(int(value))
        return value

    def _has_kind(self, value: Any) -> bool:
        if self.kind is int:
            return is_int(value) or whole_float(value)
        if self.kind is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        return isinstance(value, self.kind)

    def _checked_number(self, value: float) -> float | int:
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {shown(value)}")
        below = self.min is not None and (value <= self.min if self.min_open else value < self.min)
        above = self.max is not None and (value >= self.max if self.max_open else value > self.max)
        if below or above:
            raise ValueError(f"must be {self.describe()}, got {shown(value)}")
        return float(value) if self.kind is float else int(value)

    def _checked_text(self, value: str) -> str:
        if any(unicodedata.category(c) in INVISIBLE for c in value):
            raise ValueError(f"must not hold control or invisible formatting characters, got {shown(value)}")
        if self.nonempty and not value.strip():
            raise ValueError("must not be empty")
        if self.choices and value not in self.choices:
            from cnnkit.registry import suggest

            close = suggest(value.lower(), list(self.choices))
            hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
            raise ValueError(f"must be {self.describe()}, got {shown(value)}{hint}")
        return value


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def whole_float(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def shown(value: Any) -> str:
    """``value`` as a message shows it: ``null``/``true``/``false`` as the files spell them."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return f"a {'list' if isinstance(value, list) else 'table'} ({value!r})"
    return repr(value)


class Checked(click.ParamType):
    """A click type that parses a flag's text and applies the option's :class:`Rule`."""

    def __init__(self, rule: Rule):
        self.rule = rule
        self.name = rule.describe()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        typed = value if isinstance(value, str) and self.rule.kind in (int, float) else None
        if typed is not None:
            value = self._number(typed, param, ctx)
        try:
            return self.rule.check(value)
        except ValueError as exc:
            said, got, _ = str(exc).rpartition(", got ")
            self.fail(f"{said}, got {typed}." if typed is not None and got else f"{exc}.", param, ctx)

    def _number(self, text: str, param: click.Parameter | None, ctx: click.Context | None) -> int | float:
        """The flag's text as a number; for whole numbers also a whole float (``1e3``)."""
        try:
            return int(text, 10) if self.rule.kind is int else float(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            self._refuse(text, param, ctx)
        if self.rule.kind is int and whole_float(number):
            return number
        self._refuse(text, param, ctx)

    def _refuse(self, text: str, param: click.Parameter | None, ctx: click.Context | None) -> NoReturn:
        self.fail(f"{text!r} is not {self.rule.describe()}.", param, ctx)
