"""What ``cnnkit train`` and ``cnnkit finetune`` share: their options from the table, a ``--config``
file read first with flags on top, errors blamed on the file's key, and the hand-over to the recipe."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from cnnkit.cli.flags import SectionedCommand, command_options
from cnnkit.config import ConfigFile, load_config_file, missing_path_message, read_config_file
from cnnkit.errors import UsageError
from cnnkit.options import DEFAULTS, OPTIONS, PATH_OPTIONS, TrainConfig, absolute_paths

CONFIG_FILE = "cnnkit.config_file"
"""``ctx.meta`` key: the ``--config`` file read (:class:`cnnkit.config.ConfigFile`)."""


def _given(ctx: click.Context, name: str) -> bool:
    """Whether the user set option ``name`` (on the command line, or in a ``--config`` file)."""
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.DEFAULT_MAP)


def _ignored_by(command: str) -> list[str]:
    """Options ``command`` takes from a config file without using them: ``finetune`` ignores
    ``train``'s model options (the backbone is the model); ``train`` refuses the transfer options."""
    return [name for name, declared in OPTIONS.items() if command == "finetune" and declared.only == "train"]


def _load_config(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Options from the file become defaults, so any flag given on the command line wins. An
    option this command does not have (``freeze`` for ``train``) is refused, not ignored."""
    if value:
        config_file = load_config_file(value)
        options = config_file.options
        own = {p.name for p in ctx.command.params}
        ignored = _ignored_by(str(ctx.command.name))  # a run's config.json lists every option, most at their defaults
        foreign = [k for k, v in options.items() if k not in own and k not in ignored and v != DEFAULTS.get(k)]
        if foreign:
            names = " and ".join(f"'{k}'" for k in foreign)
            verb = "applies" if len(foreign) == 1 else "apply"
            raise UsageError(f"{value}: option{'s' * (len(foreign) > 1)} {names} {verb} to 'cnnkit finetune', "
                             f"not 'cnnkit {ctx.command.name}'.")
        ctx.default_map = {**(ctx.default_map or {}), **{k: v for k, v in options.items() if k in own}}
        ctx.meta[CONFIG_FILE] = config_file
    return value


def _blame_config_file(ctx: click.Context, exc: UsageError) -> None:
    """Put the config file and key in front of ``exc``'s message, when a value the file set (and no flag
    overrode) is what the message is about: its flag or its value is named in it."""
    from cnnkit.engine.launch import launched_by_cnnkit

    if CONFIG_FILE not in ctx.meta or launched_by_cnnkit():  # a launched worker's file is cnnkit's own
        return
    path, options = ctx.meta[CONFIG_FILE].path, ctx.meta[CONFIG_FILE].options
    message = str(exc)
    defaults = {p.name: p.default for p in ctx.command.params}
    keys = [key for key, value in options.items()
            if ctx.get_parameter_source(key) == ParameterSource.DEFAULT_MAP and value != defaults.get(key)
            and _names(message, key, value)]
    if keys and not message.startswith(f"{path}:"):
        shown = " and ".join(f"'{key}'" for key in keys)
        exc.args = (f"{path}: option{'s' * (len(keys) > 1)} {shown}: {message}",)


def _names(message: str, key: str, value: Any) -> bool:
    flag = "--" + key.replace("_", "-")
    if re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", message):
        return True
    if key == "image_size" and _size_named(message, value):
        return True
    return isinstance(value, str) and bool(value) and (f"'{value}'" in message or repr(value) in message)


def _size_named(message: str, value: str) -> bool:
    """Whether ``message`` is about images of the size ``value`` asks for (``cannot take 4x4 images``)."""
    from cnnkit.values import parse_image_size

    try:
        size = parse_image_size(value)
    except UsageError:
        return False
    return size is not None and re.search(rf"(?<!\d){size[0]}x{size[1]} images", message) is not None


def _check_file_paths(ctx: click.Context, options: dict[str, Any]) -> None:
    """A path the config file holds relative to its folder, and no flag replaced, must be there:
    say so before anything starts, naming the file, the key and where the path leads."""
    config_file: ConfigFile | None = ctx.meta.get(CONFIG_FILE)
    if config_file is None:
        return
    for key in config_file.relative:
        if key in options and ctx.get_parameter_source(key) == ParameterSource.DEFAULT_MAP:
            message = missing_path_message(config_file, key, options[key])
            if message:
                raise UsageError(message)


def _unchanged_paths_dropped(run: str, given: dict[str, Any]) -> dict[str, Any]:
    """Paths given again on ``--resume`` that name what the run recorded (absolute, or relative to
    this folder) are not changes."""
    record = Path(run) / "config.json"
    try:
        saved = read_config_file(record) if record.is_file() else {}
    except UsageError:
        return given
    here = Path.cwd()

    def same(key: str) -> bool:
        return absolute_paths({key: given[key]}, here) == absolute_paths({key: saved[key]}, here)

    return {key: value for key, value in given.items() if not (key in PATH_OPTIONS and key in saved and same(key))}


def training_command(name: str, run: Any, help: str, short_help: str | None = None) -> click.Command:
    """``cnnkit train`` or ``cnnkit finetune``: ``--config`` and the command's options from the
    table; ``run(ctx, options)`` gets the parsed options, with a failing value blamed on the config
    file's key when the file set it."""
    config = click.Option(["--config"], type=click.Path(dir_okay=False), is_eager=True, expose_value=False,
                          callback=_load_config, help="TOML or JSON file of options (e.g. a run's config.json); flags override it.")

    def callback(**options: Any) -> None:
        ctx = click.get_current_context()
        try:
            result = run(ctx, options)
        except UsageError as exc:
            _blame_config_file(ctx, exc)
            raise
        if result is not None:
            click.echo(summary_line(result))

    return SectionedCommand(name, params=[config, *command_options(name)], callback=callback, help=help, short_help=short_help)


def summary_line(result: Any) -> str:
    """The line a training command ends with: the best epoch, the test score, the run directory."""
    best = f"best epoch {result.best_epoch}: val loss {result.best['val_loss']:.4f}, val acc {100 * result.best['val_acc']:.2f}%"
    scored = f"test acc {100 * result.test['acc']:.2f}%" if result.test is not None else "no test split"
    skipped = f"; {len(result.skipped)} unreadable file(s) skipped" if result.skipped else ""
    return f"{best}, {scored}{skipped}; run: {result.run_dir}"


def run_training(ctx: click.Context, options: dict[str, Any]) -> Any:
    """Train as the options say (resuming: the run's recorded options, with the changes given)."""
    from cnnkit.recipe.run import train

    _check_file_paths(ctx, options)
    if options["resume"]:
        from cnnkit.recipe.resume import resume_config

        given = {name: value for name, value in options.items() if _given(ctx, name)}
        config = resume_config(options["resume"], _unchanged_paths_dropped(options["resume"], given))
    else:
        config = TrainConfig(**options)
    return train(config)
