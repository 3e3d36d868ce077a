"""KMS019: a grant to a principal of another account."""

from __future__ import annotations

from collections.abc import Iterator

from kmsplan.lint.facts import grant_path
from kmsplan.lint.finding import Severity
from kmsplan.lint.rule import LintContext, Rule, Violation
from kmsplan.lint.statements import principal_account
from kmsplan.model import Key


def detect(key: Key, ctx: LintContext) -> Iterator[Violation]:
    own = ctx.account_id
    if own is None:
        return  # without `account:` in the manifest, "another account" cannot be told
    for grant in key.grants:
        for role, principal in (
            ("grantee", grant.grantee),
            ("retiring_principal", grant.retiring_principal),
        ):
            account = principal_account(principal or "")
            if account is None or account == own:
                continue
            yield Violation(
                path=f"{grant_path(key, grant)}.{role}",
                message=(
                    f"grant {grant.name!r} gives {', '.join(grant.operations)} to {principal} "
                    f"of account {account} (the key is in {own})"
                    if role == "grantee"
                    else f"grant {grant.name!r} may be retired by {principal} of account "
                    f"{account} (the key is in {own})"
                ),
            )


RULE = Rule(
    id="KMS019",
    name="GrantToAnotherAccount",
    title="Grant to a principal in another account",
    severity=Severity.WARNING,
    rationale=(
        "A grant is access that the key policy does not show: a principal of another account "
        "named in a grant can use the key (or retire the grant) from that account, and "
        "reviewers of the key policy never see it. Cross-account access belongs in a reviewed "
        "decision, where it is visible."
    ),
    fix=(
        "Grant to a principal of the key's own account, or, when another account really needs "
        "the key, keep the grant narrow (only the operations it needs, an encryption context "
        "constraint) and suppress this rule for the key with the reason."
    ),
    tags=("security", "grants", "cross-account"),
    detect=detect,
)
