"""``cnnkit plugins``: what is installed, its version and API range, what it registers, and what failed."""

from __future__ import annotations

import json

import click

from cnnkit.contracts._api import API_VERSION
from cnnkit.plugin_selection import DISABLE_ENV, NO_PLUGINS_ENV, ONLY_ENV, PluginInfo
from cnnkit.plugins import get_host
from cnnkit.scaffold.command import new


def heading(info: PluginInfo) -> str:
    """``lenet5 0.1.0 (cnnkit-lenet5; API >=1.0,<2)``, with FAILED or why it was not loaded."""
    source = "built-in" if info.builtin else info.distribution
    api = f"; API {info.api}" if info.api else ""
    status = "  FAILED" if info.errors else f"  not loaded ({info.disabled})" if info.disabled else ""
    return f"{info.name} {info.version} ({source}{api}){status}"


HELP = (
    "List installed plugins and what each registers.\n\n"
    f"Each plugin shows its version, the cnnkit plugin API range it declares (this cnnkit provides API "
    f"{API_VERSION}), what it registers and what failed. {ONLY_ENV}=a,b loads only those third-party plugins, "
    f"{DISABLE_ENV}=a,b all but those, {NO_PLUGINS_ENV}=1 none."
)


@click.group(help=HELP, short_help="List installed plugins and what each registers.", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    if ctx.invoked_subcommand is not None:  # 'cnnkit plugins new ...'
        return
    host = get_host()
    host.build_all()
    infos = list(host.plugins.values())
    if as_json:
        click.echo(json.dumps([info.as_dict() for info in infos], indent=2))
        return
    for info in infos:
        click.echo(heading(info))
        for kind, names in info.registers.items():
            click.echo(f"  {kind}: {', '.join(names)}")
        for error in info.errors:
            click.echo(f"  error: {error}")
    if not host.entry_points:
        click.echo(f"Third-party plugins were not loaded ({NO_PLUGINS_ENV} is set).")


plugins.add_command(new)
