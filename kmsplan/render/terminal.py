"""Text that is safe to print: no control character from a plan, a live key or an AWS
answer reaches a terminal or a CI log raw."""

from __future__ import annotations

import re

# C0 and C1 control characters but tab and newline, DEL, and the bidirectional overrides
# ("Trojan Source"): a live string (a tag, a description, a principal, an AWS error message)
# must not move the cursor, recolour, hide or reorder what a terminal or a CI log shows.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """`text` with every control character shown as an escape (``\\x1b``, ``\\u202e``);
    tab and newline stay."""
    return _UNSAFE.sub(_escape, str(text))


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def one_line(text: str) -> str:
    """`text` safe for one line of a terminal: control characters escaped, newlines too."""
    return terminal_safe(str(text)).replace("\n", "\\n").replace("\t", "\\t")
