"""`kmsplan force-unlock LOCK_ID PATH...`: remove a stack lock a dead run left behind.

The lock is the one the manifests name (``lock:``) or ``--lock URL``, for the stack, account
and Region of the manifests. It is removed only when it is held with LOCK_ID (the id the
refused run printed), after a ``yes`` (``--force`` skips the question; without a terminal it
is required), and the command says what it removed. Nothing in KMS is read or changed.
"""

from __future__ import annotations

from datetime import datetime, timezone

import click

from kmsplan.errors import ExitCode, RefusedError
from kmsplan.options import paths_argument
from kmsplan.render.terminal import terminal_safe


@click.command("force-unlock", short_help="Remove a stack lock that a dead run left behind.")
@click.argument("lock_id")
@paths_argument
@click.option("--force", is_flag=True, help="Remove the lock without asking for 'yes'.")
@click.option(
    "--lock",
    "lock",
    metavar="URL",
    default=None,
    help="The stack lock: s3://BUCKET/PREFIX or dynamodb://TABLE; overrides the manifests' lock:.",
)
@click.option("--profile", default=None, help="AWS profile to use.")
@click.option(
    "--region",
    default=None,
    help="AWS Region when the manifest has no region: (else AWS_REGION, profile).",
)
@click.option(
    "--endpoint-url",
    default=None,
    help="Endpoint for STS, S3 and DynamoDB (LocalStack, an emulator).",
)
def command(
    lock_id: str,
    paths: tuple[str, ...],
    force: bool,
    lock: str | None,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
) -> int:
    """Remove the stack lock of the manifests in PATH..., if it is held with LOCK_ID.

    Use it only when the run that holds the lock is gone (killed, its machine lost): the lock
    keeps two runs from writing the stack at the same time.

    Exit codes: 0 removed; 1 no such lock, another id, or not confirmed.
    """
    from kmsplan.commands.apply import stdin_is_terminal
    from kmsplan.manifest import load
    from kmsplan.run import AwsSettings, ClientPool, Intent, check_account, check_region
    from kmsplan.run.guards import check_region_name
    from kmsplan.run.lock import lock_url, open_store

    aws = AwsSettings(profile=profile, region=region, endpoint_url=endpoint_url)
    check_region_name(aws.region)
    desired = load(list(paths))
    check_region(desired.region, aws.region, intent=Intent.APPLY)
    url = lock_url(lock, desired.lock)
    if url is None:
        raise click.UsageError(
            "the manifests name no lock (lock:) and --lock was not given: nothing to unlock"
        )
    pool = ClientPool(aws, role=desired.role, session_name=f"kmsplan-{desired.name}")
    identity = pool.connect(desired.region or aws.region)
    check_account(desired.account, identity, intent=Intent.APPLY)
    store = open_store(url, desired.name, identity.home, aws, desired.role)
    holder = store.read()
    now = datetime.now(timezone.utc)
    if holder is None:
        raise RefusedError(f"the stack lock {store.where} is not held: nothing was removed")
    if holder.id != lock_id:
        raise RefusedError(
            f"the stack lock {store.where} is held with another id: {holder.describe(now)}; "
            f"not {lock_id}. Nothing was removed"
        )
    click.echo(terminal_safe(f"Stack lock {store.where}: {holder.describe(now)}."))
    if not force:
        if not stdin_is_terminal():
            raise RefusedError(
                "refusing to remove the lock without confirmation: stdin is not a terminal; "
                "re-run with --force. Nothing was removed"
            )
        click.echo(
            "Removing it lets another run write the stack; do it only if the run that holds "
            "it is gone. Only 'yes' will be accepted."
        )
        answer = click.prompt("Remove the lock?", default="", show_default=False)
        if answer.strip() != "yes":
            raise RefusedError(
                "force-unlock cancelled: the answer was not 'yes'. Nothing was removed"
            )
    if not store.delete(lock_id):
        raise RefusedError(
            f"the stack lock {store.where} changed while asking (released or taken again); "
            "nothing was removed"
        )
    click.echo(
        terminal_safe(
            f"Removed the stack lock {store.where} (lock id {holder.id}, held by {holder.who} "
            f"on {holder.host}, pid {holder.pid}, {holder.command}, since {holder.created})."
        )
    )
    return int(ExitCode.OK)
