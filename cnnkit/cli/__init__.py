"""The ``cnnkit`` command. Commands come from the ``commands`` registry, so built-in and plugin
commands are found the same way; only the chosen command's module is imported."""

from __future__ import annotations

import sys

import click

from cnnkit import __version__
from cnnkit.engine.launch import launched_by_cnnkit, record_worker_error
from cnnkit.errors import CnnkitError
from cnnkit.plugin_selection import env_flag
from cnnkit.plugins import get_host, registry
from cnnkit.registry import unknown_name_message

DEBUG_ENV = "CNNKIT_DEBUG"
_debug = False


class PluginCommandGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return registry("commands").names()

    def load_command(self, name: str) -> click.Command:
        """Build one registered command; a plugin's broken command raises ``CnnkitError`` (the
        registry names the command and its plugin)."""
        command: click.Command = registry("commands").get(name).create()
        return command

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in registry("commands"):
            return None
        try:
            return self.load_command(name)
        except CnnkitError as exc:
            if get_host().strict:
                raise
            get_host().warn(f"{exc}; it is skipped")
            return None

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0]
        if name.startswith("-"):
            return super().resolve_command(ctx, args)
        if name not in registry("commands"):
            hint = "Run 'cnnkit --help' to list the commands."
            raise click.UsageError(unknown_name_message("command", name, self.list_commands(ctx), hint), ctx)
        command = self.load_command(name)
        return name, command, args[1:]


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    global _debug
    _debug = _debug or value


@click.group(cls=PluginCommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cnnkit")
@click.option("--debug", is_flag=True, expose_value=False, callback=_set_debug, is_eager=True,
              help=f"Show full tracebacks on errors (or set {DEBUG_ENV}=1).")
def cli() -> None:
    """Train and fine-tune image-classification CNNs.

    Start with `cnnkit train`: it trains a small CNN on the handwritten digits cnnkit ships.
    """


def _fail(message: str, code: int) -> None:
    record_worker_error(message)
    if not launched_by_cnnkit():  # else the launcher prints the failing rank's line
        click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def main(args: list[str] | None = None) -> None:
    """Run the CLI, turning every failure into one line on stderr and an exit code."""
    global _debug
    _debug = env_flag(DEBUG_ENV)
    try:
        code = cli.main(args=args, prog_name="cnnkit", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help())
        code = 0
    except click.UsageError as exc:
        hint = f" See '{exc.ctx.command_path} --help'." if exc.ctx is not None else ""
        _fail(exc.format_message() + hint, exc.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except click.exceptions.Abort:
        _fail("Aborted.", 130)
    except CnnkitError as exc:
        if _debug:
            record_worker_error(str(exc))
            raise
        _fail(str(exc), exc.exit_code)
    except Exception as exc:
        if _debug:
            record_worker_error(f"{type(exc).__name__}: {exc}")
            raise
        _fail(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)", 1)
    sys.exit(code if isinstance(code, int) else 0)
