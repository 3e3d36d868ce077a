"""Finding where something in a loaded key was declared, for findings and diagnostics."""

from __future__ import annotations

import re

from kmsplan.model import Key, Location

_LAST_PART = re.compile(r'(\.[^.\[\]]+|\[[0-9]+\]|\["(?:[^"\\]|\\.)*"\])$')


def parent_path(path: str) -> str:
    """`keys.orders.policy.Statement[0]` -> `keys.orders.policy.Statement`; "" at the root."""
    match = _LAST_PART.search(path)
    if match is None or match.start() == 0:
        return ""
    return path[: match.start()]


def locate(key: Key, path: str) -> Location | None:
    """Where `path` (a document path such as `keys.orders.policy.Statement[0].Action`) was
    declared: the path itself if it was written, else its nearest written ancestor, else the
    key's own location."""
    current = path
    while current:
        found = key.source_map.get(current)
        if found is not None:
            return found
        current = parent_path(current)
    return key.location
