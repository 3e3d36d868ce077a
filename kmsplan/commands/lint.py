"""`kmsplan lint PATH...`: review key policies, grants, rotation and deletion settings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kmsplan.kmsspec import ROTATION_PERIOD_MAX_DAYS, ROTATION_PERIOD_MIN_DAYS
from kmsplan.lint.finding import Finding, Severity
from kmsplan.lint.rule import LintConfig
from kmsplan.options import aws_options, paths_argument
from kmsplan.render.findings import (
    render_json,
    render_json_by_stack,
    render_text,
    render_text_by_stack,
)
from kmsplan.render.sarif import render_sarif
from kmsplan.render.terminal import terminal_safe

if TYPE_CHECKING:
    from kmsplan.run.linting import LintOutcome

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

    Files are grouped into stacks by their stack: value (a folder may hold several stacks,
    one stack may span files); each stack is linted on its own, with its own account: and,
    with --live, its own role, Region and account guard. With several stacks the report
    lists the stacks found and each stack's findings under its own heading (json: each
    finding names its stack; sarif: one run with every result); a stack that cannot be read
    live is reported and the others are still linted.

    Exits 1 when an unsuppressed finding at or above --fail-on remains in any stack, or a
    stack could not be linted; else 0. The rules are listed in docs/rules.md; disable one
    for a key with `lint: {disable: [{rule, reason}]}`.
    """
    from kmsplan.manifest import load_stacks
    from kmsplan.run.linting import LintOutcome, lint_each, lint_exit_code, lint_one

    aws = None
    if live:
        from kmsplan.run import AwsSettings, check_region_name

        check_region_name(region)
        aws = AwsSettings(
            profile=profile, region=region, endpoint_url=endpoint_url, parallelism=parallelism
        )
    stacks = load_stacks(paths)
    config = LintConfig(max_rotation_period_days=max_rotation_days)
    if len(stacks) == 1:
        findings = lint_one(stacks[0], config=config, aws=aws)
        outcomes = [LintOutcome(stack=stacks[0], findings=tuple(findings))]
        report = render(findings, output_format)
    else:
        outcomes = lint_each(stacks, config=config, aws=aws)
        report = render_by_stack(outcomes, output_format)
    if output is None:
        click.echo(report, nl=False)
    else:
        Path(output).write_text(report, encoding="utf-8")
    if output is not None or output_format != "text":
        # The report is for a program or in a file: say here too which stacks failed.
        for failure in failures(outcomes):
            click.echo(terminal_safe(failure), err=True)
    threshold = None if fail_on == "never" else Severity(fail_on)
    return int(lint_exit_code(outcomes, threshold))


def render(findings: Sequence[Finding], output_format: str) -> str:
    if output_format == "json":
        return render_json(findings)
    if output_format == "sarif":
        return render_sarif(findings)
    return render_text(findings)


def render_by_stack(outcomes: Sequence[LintOutcome], output_format: str) -> str:
    if output_format == "json":
        return render_json_by_stack(outcomes)
    if output_format == "sarif":
        findings = [f for o in outcomes for f in o.findings]
        return render_sarif(findings, failures=failures(outcomes))
    return render_text_by_stack(outcomes)


def failures(outcomes: Sequence[LintOutcome]) -> list[str]:
    """`stack NAME failed: error: ...`, for each stack that could not be linted."""
    return [f"stack {o.stack.name} failed: {o.error}" for o in outcomes if o.error is not None]
