"""One strict validation layer for training options, shared by command-line flags and config files.

Each option has a :class:`Rule`: its type (whole number, number, flag, text), its range, and
whether it may be empty (``null``). Flags are parsed from text and then checked; config files
already hold typed values (TOML, JSON) and are checked as they are, so ``epochs = 2.9`` or
``lr = true`` is refused instead of being coerced. Numbers must be finite. A whole number written
as a float (``epochs = 1e3`` in TOML or JSON, ``--epochs 1e3``) is that whole number.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Any

import click

SEED_MAX = 2**64 - 1
RDZV_TIMEOUT_MAX = 86_400
"""The longest rendezvous wait, in seconds: a day (nodes started further apart are not one job).
torch keeps the timeout in a C integer, which numbers far larger overflow with a raw error."""
BATCH_MAX = 2**31 - 1
"""The largest batch: 32-bit indexing bounds what one kernel call can address, and no dataset
cnnkit reads is larger."""
INVISIBLE = ("Cc", "Cf", "Zl", "Zp")
"""Unicode categories refused in text options: controls, format characters (such as the
right-to-left override) and line or paragraph separators."""


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
        noun = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}[self.kind]
        if self.whole_as_text:
            noun = "text or a whole number"
        shown = (lambda bound: str(int(bound))) if self.kind is int else (lambda bound: f"{bound:g}")
        bounds = []
        if self.min is not None:
            bounds.append(f"{'above' if self.min_open else 'at least'} {shown(self.min)}")
        if self.max is not None:
            bounds.append(f"{'below' if self.max_open else 'at most'} {shown(self.max)}")
        return noun + (" " + " and ".join(bounds) if bounds else "")

    def check(self, value: Any) -> Any:
        """``value`` as this option's type, or ``ValueError`` saying what was expected."""
        if value is None and self.nullable:
            return None
        if self.kind is str and self.list_joins and isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        if self.whole_as_text and ((isinstance(value, int) and not isinstance(value, bool)) or _whole_float(value)):
            value = str(int(value))
        ok = {
            int: (isinstance(value, int) and not isinstance(value, bool)) or _whole_float(value),
            float: isinstance(value, (int, float)) and not isinstance(value, bool),
            bool: isinstance(value, bool),
            str: isinstance(value, str),
        }[self.kind]
        if not ok:
            raise ValueError(f"must be {self.describe()}, got {_shown(value)}")
        if self.kind in (int, float):
            if not math.isfinite(value):
                raise ValueError(f"must be a finite number, got {_shown(value)}")
            below = self.min is not None and (value <= self.min if self.min_open else value < self.min)
            above = self.max is not None and (value >= self.max if self.max_open else value > self.max)
            if below or above:
                raise ValueError(f"must be {self.describe()}, got {_shown(value)}")
            return float(value) if self.kind is float else int(value)
        if self.kind is str and any(unicodedata.category(c) in INVISIBLE for c in value):
            raise ValueError(f"must not hold control or invisible formatting characters, got {_shown(value)}")
        if self.nonempty and not value.strip():
            raise ValueError("must not be empty")
        if self.choices and value not in self.choices:
            raise ValueError(f"must be {self.describe()}, got {_shown(value)}")
        return value


def _whole_float(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return f"a {'list' if isinstance(value, list) else 'table'} ({value!r})"
    return repr(value)


TEXT = Rule(str)
NAME = Rule(str, nonempty=True)
FLAG = Rule(bool)
RULES: dict[str, Rule] = {
    "model": NAME, "model_kwargs": Rule(str, list_joins=True), "data": NAME,
    "backbone": TEXT, "weights": TEXT, "pretrained": FLAG, "freeze": TEXT, "unfreeze_at": Rule(int, min=0),
    "backbone_lr_mult": Rule(float, min=0, nullable=True), "similar": Rule(bool, nullable=True),
    "epochs": Rule(int, min=1), "batch_size": Rule(int, min=1, max=BATCH_MAX),
    "lr": Rule(float, min=0, min_open=True), "optimizer": NAME,
    "weight_decay": Rule(float, min=0), "momentum": Rule(float, min=0, max=1), "nesterov": FLAG,
    "scheduler": NAME, "step_size": Rule(int, min=1), "gamma": Rule(float, min=0, min_open=True),
    "label_smoothing": Rule(float, min=0, max=1, max_open=True), "patience": Rule(int, min=0),
    "val_split": Rule(float, min=0, max=1, max_open=True), "image_size": Rule(str, whole_as_text=True), "data_dir": TEXT,
    "data_in_memory": Rule(str, choices=("auto", "yes", "no")), "memory_budget": Rule(float, min=0),
    "workers": Rule(int, min=0, nullable=True),
    "augment": Rule(str, list_joins=True), "mix_prob": Rule(float, min=0, max=1), "init": TEXT, "init_bias": Rule(float, nullable=True), "strategy": NAME,
    "nproc_per_node": Rule(int, min=0), "nnodes": Rule(int, min=1), "node_rank": Rule(int, min=-1),
    "rdzv_endpoint": TEXT, "rdzv_timeout": Rule(int, min=1, max=RDZV_TIMEOUT_MAX), "sync_bn": FLAG, "precision": NAME, "channels_last": Rule(bool, nullable=True),
    "compile": FLAG, "deterministic": Rule(bool, nullable=True), "seed": Rule(int, min=0, max=SEED_MAX),
    "device": NAME, "name": TEXT, "out": NAME, "quiet": FLAG, "resume": TEXT,
}


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
            number = None
        if self.rule.kind is int and _whole_float(number):
            return number
        self.fail(f"{text!r} is not {self.rule.describe()}.", param, ctx)


def checked(name: str) -> Checked:
    return Checked(RULES[name])
