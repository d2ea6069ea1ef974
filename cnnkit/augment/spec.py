"""The ``--augment`` language: comma-separated operations, each a name with optional arguments
written as in Python, e.g. ``random-resized-crop(224, scale=(0.08, 1)), hflip, mixup(alpha=0.2)``.

Arguments are literals only (numbers, strings, tuples, True/False/None; a bare word is text, as in
``autoaugment(cifar10)``), read with ``ast.literal_eval``, so a spec never runs code.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from cnnkit.errors import UsageError

NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9_.-]*)\s*")


@dataclass
class Call:
    name: str
    args: list[object] = field(default_factory=list)
    kwargs: dict[str, object] = field(default_factory=dict)
    position: int = 0
    """Where the call starts in the spec (0-based), for error messages."""


SHOWN = 80
"""Longest stretch of a spec an error message quotes."""


def spec_error(spec: str, position: int, message: str) -> UsageError:
    shown = spec
    if len(spec) > SHOWN:
        start = max(0, min(position - SHOWN // 2, len(spec) - SHOWN))
        shown = ("..." if start else "") + spec[start:start + SHOWN] + ("..." if start + SHOWN < len(spec) else "")
    return UsageError(f"--augment {shown!r}, at character {position + 1}: {message}")


def _closing(spec: str, start: int) -> int:
    """The index of the parenthesis that closes the one at ``start``."""
    depth, quote = 0, ""
    for i in range(start, len(spec)):
        c = spec[i]
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
            if depth == 0:
                return i
    raise spec_error(spec, start, "this parenthesis is never closed")


def _literal(node: ast.expr) -> object:
    """The value an argument writes; a bare word is text."""
    return node.id if isinstance(node, ast.Name) else ast.literal_eval(node)


def _arguments(spec: str, start: int, end: int, name: str) -> tuple[list[object], dict[str, object]]:
    inner = spec[start + 1:end]
    try:
        tree = ast.parse(f"f({inner})", mode="eval").body
    except (SyntaxError, RecursionError, MemoryError):
        tree = None
    if not isinstance(tree, ast.Call):
        raise spec_error(spec, start, f"the arguments of {name}({inner}) are not valid; write them as in Python, "
                         "e.g. name(1, key=0.5)") from None
    try:
        args = [_literal(a) for a in tree.args]
        values = [_literal(k.value) for k in tree.keywords]
    except (ValueError, TypeError, RecursionError, MemoryError):
        raise spec_error(spec, start, f"the arguments of {name}({inner}) must be plain values (numbers, text, "
                         "tuples, True/False)") from None
    if any(k.arg is None for k in tree.keywords) or any(isinstance(a, ast.Starred) for a in tree.args):
        raise spec_error(spec, start, f"{name}(...) takes plain values, not * or **")
    kwargs = {k.arg: v for k, v in zip(tree.keywords, values) if k.arg is not None}
    if len(kwargs) != len(tree.keywords):
        raise spec_error(spec, start, f"{name}(...) names a parameter twice")
    return args, kwargs


def parse(spec: str) -> list[Call]:
    """The calls of ``spec`` in order; an error names the character it stopped at."""
    calls: list[Call] = []
    i = 0
    while i < len(spec):
        if not spec[i:].strip():
            break
        match = NAME.match(spec, i)
        if not match:
            raise spec_error(spec, i, f"expected an augmentation name, found {spec[i:].strip()[:20]!r}")
        name, position = match.group(1), match.start(1)
        i = match.end()
        args: list[object] = []
        kwargs: dict[str, object] = {}
        if i < len(spec) and spec[i] == "(":
            end = _closing(spec, i)
            args, kwargs = _arguments(spec, i, end, name)
            i = end + 1
            while i < len(spec) and spec[i].isspace():
                i += 1
        calls.append(Call(name, args, kwargs, position))
        if i < len(spec):
            if spec[i] != ",":
                raise spec_error(spec, i, f"expected ',' between augmentations, found {spec[i]!r}")
            i += 1
            if not spec[i:].strip():
                raise spec_error(spec, i - 1, "the spec ends with ','; remove it or add an augmentation")
    return calls
