"""Lint findings as text (for people) and as JSON (for tools); SARIF is in render/sarif.py."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from kmsplan.lint.finding import Finding, Severity, finding_to_dict

FORMAT_VERSION = 1


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
    active = [f for f in findings if f.is_active]
    return {
        "format_version": FORMAT_VERSION,
        "findings": documents,
        "summary": {
            "error": sum(1 for f in active if f.severity is Severity.ERROR),
            "warning": sum(1 for f in active if f.severity is Severity.WARNING),
            "info": sum(1 for f in active if f.severity is Severity.INFO),
            "suppressed": len(findings) - len(active),
        },
    }


def render_json(findings: Sequence[Finding], *, base_dir: str | None = None) -> str:
    return json.dumps(findings_document(findings, base_dir=base_dir), indent=2) + "\n"
