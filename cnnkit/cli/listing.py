"""``cnnkit models|datasets|augmentations|initializers|strategies [PATTERN]``."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from collections.abc import Sequence

import click

from cnnkit.plugins import registry


def format_table(rows: Sequence[tuple[object, ...]], headers: tuple[str, ...]) -> str:
    """``rows`` under ``headers`` in left-aligned columns, each cell as its text."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [headers, *rows]]
    return "\n".join(lines)


def json_value(value: object) -> object:
    """Metadata as JSON: a dataclass (``AugmentParam``) as its fields, anything else iterable as a
    list, the rest as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    try:
        return list(value)  # type: ignore[call-overload]
    except TypeError:
        return str(value)


def unloaded_note(pattern: str) -> str:
    """For a pattern nothing matches: the installed plugins left unloaded (``CNNKIT_NO_PLUGINS``,
    ``CNNKIT_PLUGINS``, ``CNNKIT_DISABLE_PLUGINS``) that may provide it, as for an unknown name.
    A wildcard is matched against the plugins' names (``'lenet*'`` finds the plugin ``lenet5``)."""
    from cnnkit.plugin_selection import installed_plugins, short_name
    from cnnkit.plugins import unloaded_plugins_note

    if not any(char in pattern for char in "*?["):
        return unloaded_plugins_note(pattern)
    names = []
    for entry_point, distribution in sorted(installed_plugins().items()):
        short = short_name(distribution)
        names += [name for name in (entry_point.lower(), short) if fnmatch.fnmatchcase(name, pattern.lower())][:1]
    return unloaded_plugins_note(names[0] if names else pattern)


PATTERN_EXAMPLES = {"models": "mnist*", "datasets": "cifar*", "augmentations": "random-*", "initializers": "he-*",
                    "strategies": "d*", "callbacks": "ml*"}


def list_command(kind: str) -> click.Command:
    @click.command(
        name=kind,
        short_help=f"List registered {kind}.",
        help=f"List registered {kind}, optionally filtered by a wildcard such as '{PATTERN_EXAMPLES.get(kind, '*')}'.",
    )
    @click.argument("pattern", required=False)
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def command(pattern: str | None, as_json: bool) -> None:
        entries = registry(kind).entries(pattern)
        if as_json:
            payload = [
                {"name": e.name, "plugin": e.plugin, "help": e.help,
                 "metadata": {k: v for k, v in e.metadata.items() if not callable(v)}}
                for e in entries
            ]
            click.echo(json.dumps(payload, indent=2, default=json_value))
        elif not entries:
            click.echo(f"No {kind} match '{pattern}'.{unloaded_note(pattern)}" if pattern else f"No {kind} are registered.")
        else:
            click.echo(format_table([(e.name, e.plugin, e.help) for e in entries], ("NAME", "PLUGIN", "DESCRIPTION")))

    return command
