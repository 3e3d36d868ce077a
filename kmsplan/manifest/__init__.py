"""Manifests: YAML files declaring a stack's KMS keys, loaded into a validated `Stack`.

from kmsplan.manifest import load, resolve_variables
stack = load(["examples/payments"])          # raises ValidationFailed with every problem
stacks = load_stacks(["teams/"])             # one Stack per `stack:` value
stack = resolve_variables(stack, account_id="123456789012", region="us-east-1")
"""

from __future__ import annotations

from kmsplan.manifest.loader import load, load_stacks
from kmsplan.manifest.variables import resolve_variables

__all__ = ["load", "load_stacks", "resolve_variables"]
