"""kmsplan: declarative AWS KMS — plan and apply keys, aliases, policies, grants and rotation."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
