"""`kmsplan iam-policy --for plan|apply [PATH...]`: the least-privilege IAM policy of the role
that runs plan or apply, ready for `aws iam put-role-policy --policy-document`."""

from __future__ import annotations

import json

import click

from kmsplan.aws.permissions import INLINE_POLICY_LIMIT, KINDS, policy
from kmsplan.manifest import load_stacks


@click.command("iam-policy", short_help="Print the least-privilege IAM policy for plan or apply.")
@click.argument("paths", nargs=-1, type=click.Path(exists=False, dir_okay=True))
@click.option(
    "--for",
    "kind",
    type=click.Choice(KINDS),
    required=True,
    help="plan: read-only; apply: the reads and the writes, scoped to the stacks' keys.",
)
def command(paths: tuple[str, ...], kind: str) -> None:
    """Print the IAM policy (JSON) for the role that runs `kmsplan plan` or `kmsplan apply`.

    With PATH..., the writes are scoped to the keys of the stacks those manifests declare
    (tagged kmsplan:stack=STACK) and the resources to their accounts and Regions; without,
    to keys of any kmsplan stack. Every AWS operation kmsplan can call is covered; nothing
    else is allowed.
    """
    stacks = load_stacks(paths) if paths else ()
    document = policy(kind, stacks)
    click.echo(json.dumps(document, indent=2))
    size = len(json.dumps(document, separators=(",", ":")))
    if size > INLINE_POLICY_LIMIT:
        click.echo(
            f"note: the policy is {size} characters, over the {INLINE_POLICY_LIMIT} IAM allows "
            "for a role's inline policies; give fewer stacks per role",
            err=True,
        )
