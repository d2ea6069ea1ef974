"""``cnnkit plugins``: what is installed, its version, what it registers, and what failed."""

from __future__ import annotations

import json

import click

from cnnkit.plugins import NO_PLUGINS_ENV, get_host


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List installed plugins and what each registers."""
    host = get_host()
    host.build_all()
    infos = list(host.plugins.values())
    if as_json:
        click.echo(json.dumps([info.as_dict() for info in infos], indent=2))
        return
    for info in infos:
        source = "built-in" if info.builtin else info.distribution
        status = "" if not info.errors else "  FAILED"
        click.echo(f"{info.name} {info.version} ({source}){status}")
        for kind, names in info.registers.items():
            click.echo(f"  {kind}: {', '.join(names)}")
        for error in info.errors:
            click.echo(f"  error: {error}")
    if not host.entry_points:
        click.echo(f"Third-party plugins were not loaded ({NO_PLUGINS_ENV} is set).")
