"""`kmsplan lint PATH...`: review key policies, grants, rotation and deletion settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from kmsplan.errors import ExitCode
from kmsplan.kmsspec import ROTATION_PERIOD_MAX_DAYS, ROTATION_PERIOD_MIN_DAYS
from kmsplan.lint.engine import fails, lint_stack
from kmsplan.lint.finding import Finding, Severity
from kmsplan.lint.rule import LintConfig
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
    account_id: str | None = None
    live_policies: Mapping[str, Mapping[str, Any]] | None = None
    if live:
        from kmsplan.run import AwsSettings, Intent, open_stack

        aws = AwsSettings(
            profile=profile, region=region, endpoint_url=endpoint_url, parallelism=parallelism
        )
        with open_stack(paths, aws, intent=Intent.LINT) as session:
            stack, live_policies = session.live_policies()
            account_id = session.identity.account_id
    else:
        from kmsplan.manifest import load

        stack = load(list(paths))
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
