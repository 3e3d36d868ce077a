"""`kmsplan validate PATH...`: check manifests without touching AWS."""

from __future__ import annotations

import click

from kmsplan.manifest import load
from kmsplan.options import paths_argument


@click.command("validate", short_help="Check manifests (YAML, schema, KMS rules), no AWS calls.")
@paths_argument
def command(paths: tuple[str, ...]) -> None:
    """Validate manifests: YAML, schema and KMS rules, with no AWS call.

    PATH is a manifest file or a folder of *.yaml / *.yml files; all PATHs together form one
    stack. Prints every problem as FILE:LINE:COL and exits 1, or exits 0.
    """
    stack = load(paths)
    count = len(stack.keys)
    noun = "key" if count == 1 else "keys"
    click.echo(f"OK: {count} {noun} in stack {stack.name}")
