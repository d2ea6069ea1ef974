"""The click command ``cnnkit plugins new NAME --kind KIND [--dir PARENT]``."""

from __future__ import annotations

import click

from cnnkit.scaffold import KINDS, create


@click.command(short_help="Write a new plugin package: cnnkit plugins new NAME --kind KIND.")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(list(KINDS)), help="What the plugin registers.")
@click.option("--dir", "parent", default=".", show_default=True, metavar="PARENT",
              help="Folder to write NAME/ in (it must exist; NAME/ must not).")
def new(name: str, kind: str, parent: str) -> None:
    """Write NAME/, a pip-installable cnnkit plugin that registers one working KIND.

    NAME is the distribution's name (e.g. cnnkit-mynet); its module is NAME with '-' as '_'
    (cnnkit_mynet) and the entry is NAME without a leading 'cnnkit-' (mynet). The package holds
    pyproject.toml (the 'cnnkit' entry point), the module (its registration, CNNKIT_API and the
    implementation), a test that uses cnnkit.testing, and a README. An existing folder is never
    overwritten.
    """
    made = create(name, kind, parent)
    click.echo(f"Created {made.folder}/: the {kind} '{made.names.entry}' in module {made.names.module}.")
    for path in made.files:
        click.echo(f"  {path}")
    click.echo("Next:")
    click.echo(f"  pip install -e {made.folder}")
    click.echo("  cnnkit plugins")
    click.echo(f"  {KINDS[kind].try_it.format(entry=made.names.entry)}")
    click.echo(f"  pytest {made.folder}")
