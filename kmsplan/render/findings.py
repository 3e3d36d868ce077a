"""Lint findings as text (for people) and as JSON (for tools); SARIF is in render/sarif.py.

A lint of several stacks is one report: in text, the stacks found, then each stack's findings
(or the error that stopped it) under its own heading, then one summary for the run; in JSON,
every finding names its stack and `stacks` lists each stack with its summary or its error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, Protocol

from kmsplan.lint.finding import Finding, Severity, finding_to_dict
from kmsplan.model import Stack
from kmsplan.render.stacks import heading, stacks_found
from kmsplan.render.terminal import one_line

FORMAT_VERSION = 1


class StackFindings(Protocol):
    """One stack of a lint run: its findings, or the error that stopped it."""

    @property
    def stack(self) -> Stack: ...

    @property
    def findings(self) -> Sequence[Finding]: ...

    @property
    def error(self) -> str | None: ...


def relative_file(path: str, base_dir: str | None = None) -> str:
    """`path` relative to `base_dir` (default: the working directory) when it lies below it;
    otherwise as given. Always with forward slashes."""
    base = os.path.abspath(base_dir if base_dir is not None else os.getcwd())
    absolute = os.path.abspath(path)
    if absolute == base or absolute.startswith(base.rstrip(os.sep) + os.sep):
        path = os.path.relpath(absolute, base)
    return path.replace(os.sep, "/")


def where(f: Finding, base_dir: str | None = None) -> str:
    if f.location is None:
        return f.path
    return f"{relative_file(f.location.file, base_dir)}:{f.location.line}:{f.location.column}"


def summary(findings: Sequence[Finding]) -> str:
    """ "3 findings: 1 error, 1 warning, 1 info (1 suppressed)." or "No findings." """
    active = [f for f in findings if f.is_active]
    suppressed = len(findings) - len(active)
    if not active:
        return f"No findings ({suppressed} suppressed)." if suppressed else "No findings."
    counts = [
        _plural(sum(1 for f in active if f.severity is severity), severity.value)
        for severity in (Severity.ERROR, Severity.WARNING, Severity.INFO)
    ]
    line = f"{_plural(len(active), 'finding')}: {', '.join(counts)}"
    if suppressed:
        line += f" ({suppressed} suppressed)"
    return line + "."


def _plural(count: int, noun: str) -> str:
    if noun in ("info",):
        return f"{count} {noun}"
    return f"{count} {noun}" + ("" if count == 1 else "s")


def render_text(findings: Sequence[Finding], *, base_dir: str | None = None) -> str:
    """One line per finding, compiler style, then a summary line:

    ``examples/bad/stack.yaml:12:11: error: KMS001 [public-key] Statement[0] ... ``
    """
    lines: list[str] = []
    for f in findings:
        line = f"{where(f, base_dir)}: {f.severity.value}: {f.rule} [{f.key}] {f.message}"
        if f.suppressed:
            line += f" (suppressed: {f.suppression_reason})"
        lines.append(line)
    lines.append(summary(findings))
    return "\n".join(lines) + "\n"


def findings_document(
    findings: Sequence[Finding], *, base_dir: str | None = None
) -> dict[str, Any]:
    documents = []
    for f in findings:
        doc = finding_to_dict(f)
        if doc["location"] is not None:
            doc["location"]["file"] = relative_file(doc["location"]["file"], base_dir)
        documents.append(doc)
    return {
        "format_version": FORMAT_VERSION,
        "findings": documents,
        "summary": _counts(findings),
    }


def _counts(findings: Sequence[Finding]) -> dict[str, int]:
    active = [f for f in findings if f.is_active]
    return {
        "error": sum(1 for f in active if f.severity is Severity.ERROR),
        "warning": sum(1 for f in active if f.severity is Severity.WARNING),
        "info": sum(1 for f in active if f.severity is Severity.INFO),
        "suppressed": len(findings) - len(active),
    }


def render_json(findings: Sequence[Finding], *, base_dir: str | None = None) -> str:
    return json.dumps(findings_document(findings, base_dir=base_dir), indent=2) + "\n"


def run_summary(outcomes: Sequence[StackFindings]) -> str:
    """`Run: 2 stacks, 1 failed. 3 findings: 2 errors, 1 warning, 0 info.`"""
    count = len(outcomes)
    failed = sum(1 for o in outcomes if o.error is not None)
    line = f"Run: {count} stack{'s' if count != 1 else ''}"
    if failed:
        line += f", {failed} failed"
    return f"{line}. {summary([f for o in outcomes for f in o.findings])}"


def render_text_by_stack(outcomes: Sequence[StackFindings], *, base_dir: str | None = None) -> str:
    """A lint of several stacks: the stacks found, each stack's findings (compiler style,
    with its summary) or its error under its own heading, then one summary for the run."""
    lines = [*stacks_found([o.stack for o in outcomes]), ""]
    for outcome in outcomes:
        lines.append(heading(outcome.stack))
        if outcome.error is not None:
            lines.append(f"failed: {one_line(outcome.error)}")
        else:
            lines.append(render_text(outcome.findings, base_dir=base_dir).rstrip("\n"))
        lines.append("")
    lines.append(run_summary(outcomes))
    return "\n".join(lines) + "\n"


def render_json_by_stack(outcomes: Sequence[StackFindings], *, base_dir: str | None = None) -> str:
    """A lint of several stacks as one document: `findings` and `summary` as for one stack
    (each finding with its `stack`), and `stacks`: each stack's name, account and Region as
    declared, its summary, or the error that stopped it (then its summary is null)."""
    findings = [f for o in outcomes for f in o.findings]
    names = [o.stack.name for o in outcomes for _ in o.findings]
    document = findings_document(findings, base_dir=base_dir)
    stacks = [
        {
            "stack": o.stack.name,
            "account": o.stack.account,
            "region": o.stack.region,
            "error": o.error,
            "summary": None if o.error is not None else _counts(o.findings),
        }
        for o in outcomes
    ]
    return (
        json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "stacks": stacks,
                "findings": [
                    {"stack": name, **doc}
                    for name, doc in zip(names, document["findings"], strict=True)
                ],
                "summary": document["summary"],
            },
            indent=2,
        )
        + "\n"
    )
