"""One exception root, diagnostics and exit codes.

Every problem a user can cause (bad input, refused plans, AWS errors) is a `KmsplanError`;
`kmsplan.cli` is the one place that turns it into a message and an exit code. A traceback
reaching the user is a bug.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1
    CHANGES = 2  # --detailed-exitcode: the plan has changes
    BLOCKED = 3  # the plan has changes the safety gate blocks


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    """One problem found in the input, located as precisely as we can.

    Rendered as ``FILE:LINE:COL: error: PATH: MESSAGE (ALLOWED)``.
    """

    file: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    path: str  # dotted document path, e.g. "keys.orders.rotation.period_days"; "" for the root
    message: str  # what is wrong
    allowed: str = ""  # what is allowed instead

    def render(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        what = f"{self.path}: {self.message}" if self.path else self.message
        if self.allowed:
            what = f"{what} ({self.allowed})"
        return f"{where}: error: {what}"


class KmsplanError(Exception):
    """Root of every error kmsplan reports to the user (exit code 1)."""

    exit_code: ExitCode = ExitCode.ERROR

    def render(self) -> str:
        return f"error: {self}"


class ValidationFailed(KmsplanError):
    """The manifests did not validate; carries every diagnostic found."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__(f"{len(self.diagnostics)} error(s) in the manifests")

    def render(self) -> str:
        return "\n".join(d.render() for d in self.diagnostics)


class PolicyError(KmsplanError):
    """A key policy document that cannot be parsed or normalized."""


class AwsError(KmsplanError):
    """An AWS call failed in a way kmsplan cannot recover from."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        self.operation = operation
        self.code = code
        self.message = message
        super().__init__(f"{operation} failed: {code}: {message}")


class RefusedError(KmsplanError):
    """kmsplan refuses to go on (account guard, stale plan, blocked plan, no approval)."""
