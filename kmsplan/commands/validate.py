"""`kmsplan validate PATH...`: check manifests without touching AWS."""

from __future__ import annotations

import click

from kmsplan.manifest import load_stacks
from kmsplan.options import paths_argument
from kmsplan.render.stacks import render_valid


@click.command("validate", short_help="Check manifests (YAML, schema, KMS rules), no AWS calls.")
@paths_argument
def command(paths: tuple[str, ...]) -> None:
    """Validate manifests: YAML, schema and KMS rules, with no AWS call.

    PATH is a manifest file or a folder of *.yaml / *.yml files. Files are grouped into
    stacks by their stack: value: a folder may hold several stacks, and one stack may span
    files and folders. Each stack is validated on its own. Prints every problem of every
    stack as FILE:LINE:COL and exits 1; else prints the stacks found (name, account and
    Region as declared, when there are several) and OK per stack, and exits 0.
    """
    click.echo(render_valid(load_stacks(paths)), nl=False)
