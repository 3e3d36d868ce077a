"""`kmsplan stacks PATH...`: the stacks a set of manifests declares, with where each runs.

`--format github-matrix` prints the JSON of a GitHub Actions ``strategy.matrix`` with one
entry per stack, so CI can fan out one plan or apply job per stack.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import click

from kmsplan.manifest import load_stacks
from kmsplan.manifest.loader import manifest_files
from kmsplan.manifest.semantics import Reporter
from kmsplan.model import Stack
from kmsplan.options import paths_argument
from kmsplan.render.terminal import terminal_safe

FORMATS = ("text", "json", "github-matrix")
# The keys of one GitHub matrix entry, in this order.
MATRIX_KEYS = ("stack", "path", "account", "region", "role")


@click.command("stacks", short_help="List the stacks in the manifests (for CI fan-out).")
@paths_argument
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text for people, json for programs, github-matrix for a GitHub Actions matrix.",
)
def command(paths: tuple[str, ...], output_format: str) -> None:
    """List the stacks that the manifests in PATH... declare: name, path, account, Region
    and role. Files are grouped by their stack: value; the manifests are validated first.

    PATH of each stack is what to pass to `kmsplan plan` to plan that stack alone: the
    folder when the stack is every manifest of one folder given, else its files.
    """
    stacks = load_stacks(paths)
    entries = [entry(stack, stack_path(stack, paths)) for stack in stacks]
    if output_format == "github-matrix":
        matrix = {"include": [{k: e[k] for k in MATRIX_KEYS} for e in entries]}
        click.echo(json.dumps(matrix, separators=(",", ":")))
    elif output_format == "json":
        click.echo(json.dumps({"stacks": entries}, indent=2))
    else:
        click.echo(terminal_safe(render_text(entries)), nl=False)


def entry(stack: Stack, path: str) -> dict[str, Any]:
    """One stack as data: None where the manifests declare nothing."""
    return {
        "stack": stack.name,
        "path": path,
        "account": stack.account,
        "region": stack.region,
        "role": stack.role.arn if stack.role else None,
        "external_id": stack.role.external_id if stack.role else None,
        "session_name": stack.role.session_name if stack.role else None,
        "files": list(stack.files),
        "keys": len(stack.keys),
    }


def stack_path(stack: Stack, given: Sequence[str]) -> str:
    """What to pass to kmsplan for this stack alone: a folder given in `given` whose
    manifests are exactly the stack's files, else the files themselves, space-separated."""
    files = set(stack.files)
    for path in given:
        if not os.path.isdir(path):
            continue
        inside = {f.display for f in manifest_files([path], Reporter())}
        if inside == files:
            return path
    return " ".join(stack.files)


def render_text(entries: Sequence[dict[str, Any]]) -> str:
    header = ("STACK", "PATH", "ACCOUNT", "REGION", "ROLE")
    rows = [header] + [
        (e["stack"], e["path"], e["account"] or "-", e["region"] or "-", e["role"] or "-")
        for e in entries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    ]
    count = len(entries)
    lines.append(f"{count} stack{'' if count == 1 else 's'}.")
    return "\n".join(line.rstrip() for line in lines) + "\n"
