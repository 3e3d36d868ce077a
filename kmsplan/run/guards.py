"""The guards every command that reads live state goes through — plan, apply, apply --plan
and lint --live — so that none of them reads or writes in an account or Region the stack was
not declared for.

1. `check_region_name`: ``--region`` follows the rule the manifest's ``region:`` follows (the
   manifest schema's pattern: one source), before anything is read;
2. `check_region`: ``--region`` may not contradict the Region the stack declares (the
   manifests' ``region:``, or the Region a saved plan was made for);
3. `check_account`: once STS has said who the credentials are, the account must be the one the
   stack declares (the manifests' ``account:``, or a saved plan's account).

The rule is one; the wording names what the command was about to do (`Intent`).
"""

from __future__ import annotations

import enum
import re

from kmsplan.errors import KmsplanError, RefusedError
from kmsplan.manifest.schema import PATTERN_TEXT, manifest_schema
from kmsplan.run.clients import Identity


class Intent(enum.Enum):
    """What the run is for; it only changes how a refusal is worded."""

    PLAN = "plan"  # plan from the manifests
    APPLY = "apply"  # apply from the manifests
    LINT = "lint"  # lint --live: reads the keys' live policies
    SAVED_PLAN = "saved-plan"  # apply --plan FILE


def region_pattern() -> str:
    """The manifest schema's pattern for ``region:``."""
    pattern: str = manifest_schema()["properties"]["region"]["pattern"]
    return pattern


def check_region_name(region: str | None, *, source: str = "--region") -> None:
    """Refuse a Region name (``--region``, a saved plan's) that the manifest schema would
    refuse as ``region:``."""
    if region is None:
        return
    pattern = region_pattern()
    if re.search(pattern, region) is None:
        raise KmsplanError(
            f"invalid {source} {region!r}: expected {PATTERN_TEXT.get(pattern, pattern)}. "
            "Nothing was read or changed"
        )


def check_region(declared: str | None, region: str | None, *, intent: Intent) -> None:
    """The Region guard: `region` (``--region``) may not contradict `declared`."""
    if declared is None or region is None or region == declared:
        return
    if intent is Intent.SAVED_PLAN:
        raise RefusedError(
            f"the saved plan is for Region {declared}, not {region}; nothing was changed"
        )
    doing = (
        "refusing to read another Region's keys. Drop --region or fix the manifest. "
        "Nothing was read"
        if intent is Intent.LINT
        else "refusing to plan or apply in another Region. Drop --region or fix the manifest. "
        "Nothing was read or changed"
    )
    raise RefusedError(
        f"the manifests declare region {declared} (region:), but --region is {region}; {doing}"
    )


def check_account(declared: str | None, identity: Identity, *, intent: Intent) -> None:
    """The account guard: a stack declared for one account is never read or changed with
    credentials of another."""
    account_id = identity.account_id
    if declared is None or declared == account_id:
        return
    if intent is Intent.SAVED_PLAN:
        raise RefusedError(
            f"the saved plan is for account {declared}, but the credentials are for "
            f"account {account_id} ({identity.caller_arn}); nothing was changed"
        )
    if intent is Intent.LINT:
        raise RefusedError(
            f"the manifest declares account {declared}, but the credentials are for "
            f"account {account_id}; refusing to read another account's keys"
        )
    raise RefusedError(
        f"the manifests declare account {declared} (account:), but the credentials "
        f"are for account {account_id} ({identity.caller_arn}); refusing to plan or apply "
        "against another account. Nothing was read or changed"
    )
