"""`kmsplan lint PATH...`: review key policies, grants, rotation and deletion settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from kmsplan.errors import ExitCode, RefusedError
from kmsplan.kmsspec import ROTATION_PERIOD_MAX_DAYS, ROTATION_PERIOD_MIN_DAYS
from kmsplan.lint.engine import fails, lint_stack
from kmsplan.lint.finding import Finding, Severity
from kmsplan.lint.rule import LintConfig
from kmsplan.model import Stack
from kmsplan.options import aws_options, paths_argument
from kmsplan.render.findings import render_json, render_text
from kmsplan.render.sarif import render_sarif

FORMATS = ("text", "json", "sarif")
FAIL_ON = ("error", "warning", "never")


@click.command("lint", short_help="Review key policies, grants, rotation and deletion settings.")
@paths_argument
@click.option(
    "--live",
    is_flag=True,
    help="Also read the keys' live policies from KMS (finds deleted principals).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="Output format; sarif is SARIF 2.1.0 for GitHub code scanning.",
)
@click.option(
    "--fail-on",
    type=click.Choice(FAIL_ON),
    default="error",
    show_default=True,
    help="Exit 1 when an unsuppressed finding of this severity or higher remains.",
)
@click.option(
    "--max-rotation-days",
    type=click.IntRange(ROTATION_PERIOD_MIN_DAYS, ROTATION_PERIOD_MAX_DAYS),
    default=LintConfig().max_rotation_period_days,
    show_default=True,
    metavar="DAYS",
    help="Longest rotation period that is not reported (KMS009).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the report to this file instead of standard output.",
)
@aws_options
def command(
    paths: tuple[str, ...],
    live: bool,
    output_format: str,
    fail_on: str,
    max_rotation_days: int,
    output: str | None,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
    parallelism: int,
) -> int:
    """Review the key policies, grants, rotation and deletion settings in PATH... .

    Exits 1 when an unsuppressed finding at or above --fail-on remains, else 0. The rules are
    listed in docs/rules.md; disable one for a key with `lint: {disable: [{rule, reason}]}`.
    """
    from kmsplan.manifest import load

    stack = load(list(paths))
    account_id: str | None = None
    live_policies: Mapping[str, Mapping[str, Any]] | None = None
    if live:
        stack, account_id, live_policies = _read_live(
            stack,
            profile=profile,
            region=region,
            endpoint_url=endpoint_url,
            parallelism=parallelism,
        )
    config = LintConfig(max_rotation_period_days=max_rotation_days)
    findings = lint_stack(stack, live_policies=live_policies, config=config, account_id=account_id)
    report = render(findings, output_format)
    if output is None:
        click.echo(report, nl=False)
    else:
        Path(output).write_text(report, encoding="utf-8")
    threshold = None if fail_on == "never" else Severity(fail_on)
    return int(ExitCode.ERROR if fails(findings, threshold) else ExitCode.OK)


def render(findings: Sequence[Finding], output_format: str) -> str:
    if output_format == "json":
        return render_json(findings)
    if output_format == "sarif":
        return render_sarif(findings)
    return render_text(findings)


def _read_live(
    stack: Stack,
    *,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
    parallelism: int,
) -> tuple[Stack, str, dict[str, Mapping[str, Any]]]:
    """The stack with `${account_id}`/`${region}` resolved, the live account, and the live
    policy of every declared key that exists in KMS (by logical name)."""
    from kmsplan.aws.client import AwsClients, caller_identity
    from kmsplan.aws.reader import read_live
    from kmsplan.manifest.variables import resolve_variables

    clients = AwsClients.create(
        profile=profile,
        region=region or stack.region,
        endpoint_url=endpoint_url,
        parallelism=parallelism,
    )
    if stack.account is not None:
        account_id, _ = caller_identity(clients)
        if account_id != stack.account:
            raise RefusedError(
                f"the manifest declares account {stack.account}, but the credentials are for "
                f"account {account_id}; refusing to read another account's keys"
            )
    state = read_live(clients, stack)
    resolved = resolve_variables(stack, account_id=state.account_id, region=state.region)
    policies: dict[str, Mapping[str, Any]] = {
        k.name: k.policy for k in state.keys if k.policy is not None
    }
    return resolved, state.account_id, policies
