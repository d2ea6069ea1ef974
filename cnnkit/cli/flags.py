"""Click options made from the option table (:mod:`cnnkit.options`): one flag per option, with each
command's defaults, listed under the table's sections in ``--help``."""

from __future__ import annotations

from typing import Any

import click

from cnnkit.options import DEFAULTS, OPTIONS, SAME_AS_TRAIN, SECTIONS, checked, flag_name

LEFT_OUT = {"train": "finetune", "finetune": "train"}
"""Each training command leaves out the options that belong only to the other one."""


def default_for(name: str, command: str) -> Any:
    """Option ``name``'s default under ``command`` (``finetune`` has the transfer recipe's own)."""
    special = OPTIONS[name].finetune
    return special if command == "finetune" and special is not SAME_AS_TRAIN else DEFAULTS[name]


def table_option(name: str, command: str = "train", **overrides: Any) -> click.Option:
    """The click option of table entry ``name`` as ``command`` offers it; ``overrides`` replace
    what another command means by the same flag (``cnnkit summary``'s ``--model`` has no default)."""
    declared = OPTIONS[name]
    settings: dict[str, Any] = {
        "default": default_for(name, command), "help": declared.help or None,
        "show_default": declared.show_default, "metavar": declared.metavar,
    }
    if declared.flag:
        declarations = [declared.flag]
        settings["is_flag"] = "/" not in declared.flag or None
    else:
        declarations = [flag_name(name)]
        settings["type"] = checked(name)
    settings.update(overrides)
    return click.Option(declarations, **{key: value for key, value in settings.items() if value is not None or key == "default"})


def command_options(command: str) -> list[click.Option]:
    """Every option of a training command, in the table's order."""
    return [table_option(name, command) for name, declared in OPTIONS.items() if declared.only != LEFT_OUT[command]]


class SectionedCommand(click.Command):
    """A command whose ``--help`` lists its options under the table's sections (Model, Data, ...)."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                section = OPTIONS[param.name].section if param.name in OPTIONS else ""
                rows.setdefault(section, []).append(record)
        for section in ("", *SECTIONS):
            if section in rows:
                with formatter.section(f"{section} options" if section else "Options"):
                    formatter.write_dl(rows[section])
