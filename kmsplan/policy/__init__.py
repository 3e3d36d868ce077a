"""Key policies: parsing, canonical form, semantic equivalence, statement diffs, access
summaries and the lockout check. Pure: no I/O, no AWS calls."""

from __future__ import annotations

from kmsplan.policy.document import (
    Condition,
    Policy,
    PolicyInput,
    PrincipalSet,
    Statement,
    canonical_action,
    canonical_principal,
    parse_pair,
    parse_policy,
)
from kmsplan.policy.normalize import differs_only_in_labels, equivalent, normalize

__all__ = [
    "Condition",
    "Policy",
    "PolicyInput",
    "PrincipalSet",
    "Statement",
    "canonical_action",
    "canonical_principal",
    "differs_only_in_labels",
    "equivalent",
    "normalize",
    "parse_pair",
    "parse_policy",
]
