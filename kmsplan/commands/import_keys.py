"""`kmsplan import KEYREF... --stack NAME --out DIR`: write manifests that adopt existing
keys. Reads KMS, never writes to it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import click

from kmsplan.errors import KmsplanError, RefusedError
from kmsplan.options import aws_options


@click.command("import", short_help="Write manifests that adopt existing keys (reads only).")
@click.argument("keyrefs", nargs=-1, metavar="KEYREF...")
@click.option(
    "--stack",
    "stack",
    required=True,
    help="The stack the imported keys will belong to (the manifests' stack:).",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, dir_okay=True),
    help="Folder to write the manifest and its policies/ into (created if missing).",
)
@click.option(
    "--all",
    "every_unowned",
    is_flag=True,
    help="Also import every customer managed key of the Region that no stack owns.",
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist in --out.")
@aws_options
def command(
    keyrefs: tuple[str, ...],
    stack: str,
    out: str,
    every_unowned: bool,
    force: bool,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
    parallelism: int,
) -> None:
    """Write a manifest set into DIR that adopts the keys KEYREF... names (key ids, key ARNs
    or alias names), with their description, spec, usage, state, rotation, tags, aliases and
    key policy (in policies/NAME.json). Grants made by others are listed as comments: they
    stay unmanaged. Makes no write call to KMS.

    Then: `kmsplan plan DIR` shows only the adoptions; `kmsplan apply DIR` makes them.
    """
    from kmsplan.aws.inventory import read_inventory
    from kmsplan.manifest.writer import imported_set
    from kmsplan.run import AwsSettings, ClientPool, check_region_name

    if not keyrefs and not every_unowned:
        raise KmsplanError(
            "name the keys to import (KEYREF...: key ids, ARNs or aliases), or pass --all"
        )
    _check_stack_name(stack)
    check_region_name(region)
    pool = ClientPool(
        AwsSettings(
            profile=profile, region=region, endpoint_url=endpoint_url, parallelism=parallelism
        )
    )
    identity = pool.connect(region)
    inventory = read_inventory(
        pool.clients(identity.home),
        keyrefs,
        every_unowned=every_unowned,
        stack=stack,
        account_id=identity.account_id,
    )
    if inventory.refused:
        raise RefusedError(
            "cannot import; nothing was written:\n"
            + "\n".join(f"  {why}" for why in inventory.refused)
        )
    for why in inventory.skipped:
        click.echo(f"skipped: {why}", err=True)
    if not inventory.keys:
        raise KmsplanError(
            f"no key to import in account {inventory.account_id}, {inventory.region}; "
            "nothing was written"
        )
    written = imported_set(
        inventory.keys, stack=stack, account_id=inventory.account_id, region=inventory.region
    )
    write_files(Path(out), written.files, force=force)
    count = len(inventory.keys)
    click.echo(
        f"Wrote {count} key{'s' if count != 1 else ''} of account {inventory.account_id}, "
        f"{inventory.region} to {out} (stack {stack}). Next: kmsplan plan {out}"
    )


def write_files(folder: Path, files: Mapping[str, str], *, force: bool) -> None:
    """Write `files` (relative name -> text) under `folder`; refuse, before writing any,
    when one exists and `force` is not given."""
    existing = sorted(name for name in files if (folder / name).exists())
    if existing and not force:
        raise RefusedError(
            f"{folder}: {', '.join(existing)} already exist(s); nothing was written (pass "
            "--force to overwrite)"
        )
    try:
        for name, text in files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise KmsplanError(f"cannot write to {folder}: {exc.strerror or exc}") from None


def _check_stack_name(stack: str) -> None:
    from kmsplan.aws.reader import is_key_name

    if not is_key_name(stack):  # a stack name follows the same rule as a key name
        raise KmsplanError(
            f'--stack "{stack}" is not a valid stack name (1-64 letters, digits, "_" or "-", '
            "starting with a letter or digit)"
        )
