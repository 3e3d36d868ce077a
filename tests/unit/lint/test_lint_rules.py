"""Every rule against its good and bad fixtures, loaded through the manifest loader: the bad
fixture yields exactly the expected findings (id, key, path, location, message), the good one
yields nothing at all."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from lint_helpers import FIXTURES, ROOT, fixture, lint_file

from kmsplan.lint.finding import Severity
from kmsplan.lint.registry import RULES, rule_by_id


@dataclass(frozen=True)
class Expected:
    rule: str
    key: str
    path: str
    line: int
    column: int
    message: str


EXPECTED: dict[str, list[Expected]] = {
    "KMS001": [
        Expected(
            "KMS001",
            "public-decrypt",
            "keys.public-decrypt.policy.Statement[1].Principal",
            18,
            22,
            'Statement[1] ("AnyoneMayDecrypt") allows kms:Decrypt to every principal ("*") '
            "with no condition that limits the callers to an account, an organization or "
            "an AWS service",
        ),
    ],
    "KMS002": [
        Expected(
            "KMS002",
            "app-has-kms-star",
            "keys.app-has-kms-star.policy.Statement[1].Action",
            19,
            19,
            'Statement[1] ("AppEverything") allows "kms:*" (every KMS action, key policy and '
            "deletion included) to arn:aws:iam::111122223333:role/app, not only to the "
            "account root",
        ),
    ],
    "KMS003": [
        Expected(
            "KMS003",
            "user-can-delete",
            "keys.user-can-delete.policy.Statement[2].Action",
            24,
            19,
            "arn:aws:iam::111122223333:role/app uses the key (kms:Decrypt, "
            "kms:GenerateDataKey) and is also allowed to administer it (kms:PutKeyPolicy, "
            'kms:ScheduleKeyDeletion) in Statement[2] ("AppAlsoManages")',
        ),
    ],
    "KMS004": [
        Expected(
            "KMS004",
            "nobody-administers",
            "keys.nobody-administers.policy",
            9,
            7,
            "no principal named in the policy (nor the root of account 111122223333) can "
            "call kms:PutKeyPolicy without conditions: once applied, nobody could change "
            "this key policy again",
        ),
    ],
    "KMS005": [
        Expected(
            "KMS005",
            "partner-unconditioned",
            "keys.partner-unconditioned.policy.Statement[1].Principal",
            18,
            22,
            'Statement[1] ("PartnerDecrypt") allows kms:Decrypt, kms:DescribeKey to '
            "arn:aws:iam::444455556666:root of account 444455556666 (the key is in "
            "111122223333) with no kms:CallerAccount or kms:ViaService condition",
        ),
    ],
    "KMS006": [
        Expected(
            "KMS006",
            "grants-for-anything",
            "keys.grants-for-anything.policy.Statement[1].Action",
            19,
            19,
            'Statement[1] ("OperatorGrants") allows kms:CreateGrant to '
            "arn:aws:iam::111122223333:role/operator without a condition that limits it "
            'to AWS services ("kms:GrantIsForAWSResource": "true" or kms:ViaService)',
        ),
        Expected(
            "KMS006",
            "account-wide-grants",
            "keys.account-wide-grants.policy.Statement[1].Action",
            35,
            19,
            'Statement[1] ("AnyoneInTheAccountGrants") allows kms:CreateGrant to every '
            'principal ("*") without a condition that limits it to AWS services '
            '("kms:GrantIsForAWSResource": "true" or kms:ViaService)',
        ),
    ],
    "KMS007": [
        Expected(
            "KMS007",
            "allow-not-principal",
            "keys.allow-not-principal.policy.Statement[1].NotPrincipal",
            18,
            25,
            'Statement[1] ("EveryoneButIntern") allows every principal except '
            "arn:aws:iam::111122223333:role/intern (Allow with NotPrincipal)",
        ),
        Expected(
            "KMS007",
            "allow-not-action",
            "keys.allow-not-action.policy.Statement[1].NotAction",
            34,
            22,
            'Statement[1] ("AllButDelete") allows every action except '
            "kms:ScheduleKeyDeletion (Allow with NotAction)",
        ),
    ],
    "KMS008": [
        Expected(
            "KMS008",
            "never-rotated",
            "keys.never-rotated.rotation.enabled",
            8,
            25,
            "automatic rotation is disabled on SYMMETRIC_DEFAULT key 'never-rotated', "
            "which KMS can rotate",
        ),
    ],
    "KMS009": [
        Expected(
            "KMS009",
            "rotates-every-two-years",
            "keys.rotates-every-two-years.rotation.period_days",
            7,
            44,
            "key 'rotates-every-two-years' rotates every 730 days; the maximum is 365 days",
        ),
    ],
    "KMS010": [
        Expected(
            "KMS010",
            "seven-day-window",
            "keys.seven-day-window.deletion.window_days",
            9,
            29,
            "key 'seven-day-window' would be destroyed 7 days after its deletion is "
            "scheduled; at least 30 days leaves time to notice and cancel",
        ),
    ],
    "KMS011": [
        Expected(
            "KMS011",
            "unprotected",
            "keys.unprotected.deletion.protected",
            8,
            27,
            "deletion protection is off for key 'unprotected': a plan may schedule its "
            "deletion (with --allow-delete)",
        ),
    ],
    "KMS012": [
        Expected(
            "KMS012",
            "grant-can-regrant",
            "keys.grant-can-regrant.grants[0].operations",
            11,
            21,
            "grant 'etl' to arn:aws:iam::111122223333:role/etl includes CreateGrant: the "
            "grantee can create further grants and pass its access on without a policy "
            "change",
        ),
    ],
    "KMS013": [
        Expected(
            "KMS013",
            "grant-any-context",
            "keys.grant-any-context.grants[0]",
            9,
            9,
            "grant 'reports' to arn:aws:iam::111122223333:role/reports has no encryption "
            "context constraint: it allows Decrypt, GenerateDataKey on any data under key "
            "'grant-any-context'",
        ),
    ],
    "KMS014": [
        Expected(
            "KMS014",
            "rsa-2048-encryption",
            "keys.rsa-2048-encryption.spec",
            7,
            11,
            "key 'rsa-2048-encryption' uses RSA_2048 for ENCRYPT_DECRYPT",
        ),
    ],
    "KMS015": [
        Expected(
            "KMS015",
            "crowded-policy",
            "keys.crowded-policy.policy",
            8,
            13,
            "the key policy is 29,177 bytes as compact JSON and is close to the KMS limit "
            "of 32,768 bytes (warning above 28,672)",
        ),
    ],
    "KMS016": [
        Expected(
            "KMS016",
            "deleted-role",
            "keys.deleted-role.policy",
            9,
            7,
            "the live policy of key 'deleted-role' names AROAEXAMPLEROLEID1234: IAM unique "
            "ids left behind by deleted roles or users; those statements match nobody now",
        ),
    ],
    "KMS017": [
        Expected(
            "KMS017",
            "mistyped-suppression",
            "keys.mistyped-suppression.lint.disable[0].rule",
            11,
            17,
            "lint.disable of key 'mistyped-suppression' names rule 'KMS11', which kmsplan "
            "does not have (rules are KMS001 to KMS019): this entry suppresses nothing",
        ),
    ],
    "KMS018": [
        Expected(
            "KMS018",
            "topic-for-any-bucket",
            "keys.topic-for-any-bucket.policy.Statement[1].Principal",
            18,
            22,
            'Statement[1] ("S3EventNotifications") allows kms:Decrypt, '
            "kms:GenerateDataKey* to s3.amazonaws.com with no aws:SourceAccount, "
            "aws:SourceArn or encryption context condition: the service may use the key "
            "for any account's resources (confused deputy)",
        ),
        Expected(
            "KMS018",
            "topic-for-any-bucket",
            "keys.topic-for-any-bucket.policy.Statement[2].Principal",
            23,
            22,
            'Statement[2] ("NegatedSourceAccountPinsNothing") allows kms:Decrypt to '
            "sns.amazonaws.com with no aws:SourceAccount, aws:SourceArn or encryption "
            "context condition: the service may use the key for any account's resources "
            "(confused deputy)",
        ),
    ],
    "KMS019": [
        Expected(
            "KMS019",
            "grant-to-partner",
            "keys.grant-to-partner.grants[0].grantee",
            10,
            18,
            "grant 'partner' gives Decrypt to arn:aws:iam::444455556666:role/partner of "
            "account 444455556666 (the key is in 111122223333)",
        ),
        Expected(
            "KMS019",
            "grant-to-partner",
            "keys.grant-to-partner.grants[0].retiring_principal",
            12,
            29,
            "grant 'partner' may be retired by arn:aws:iam::444455556666:role/partner-admin "
            "of account 444455556666 (the key is in 111122223333)",
        ),
    ],
}


def test_every_rule_has_expectations_and_fixtures() -> None:
    assert sorted(EXPECTED) == [rule.id for rule in RULES]
    for rule in RULES:
        assert fixture(rule.id, "good").is_file(), rule.id
        assert fixture(rule.id, "bad").is_file(), rule.id
    assert sorted(p.name for p in FIXTURES.glob("KMS*")) == [rule.id for rule in RULES]


@pytest.mark.parametrize("rule_id", sorted(EXPECTED))
def test_bad_fixture_yields_exactly_the_expected_findings(rule_id: str) -> None:
    path = fixture(rule_id, "bad")
    findings = lint_file(path)
    rule = rule_by_id(rule_id)
    assert rule is not None
    file = str(path.relative_to(ROOT))
    assert [
        (
            f.rule,
            f.key,
            f.path,
            f.location.file if f.location else None,
            f.location.line if f.location else None,
            f.location.column if f.location else None,
            f.message,
        )
        for f in findings
    ] == [(e.rule, e.key, e.path, file, e.line, e.column, e.message) for e in EXPECTED[rule_id]]
    for f in findings:
        assert f.severity is rule.severity
        assert f.title == rule.title
        assert not f.suppressed and f.suppression_reason is None


@pytest.mark.parametrize("rule_id", sorted(EXPECTED))
def test_good_fixture_yields_no_active_finding(rule_id: str) -> None:
    findings = lint_file(fixture(rule_id, "good"))
    assert [f for f in findings if f.is_active] == []


def test_suppressed_finding_in_good_fixture_is_still_reported_with_its_reason() -> None:
    (finding,) = lint_file(fixture("KMS011", "good"))
    assert (finding.rule, finding.key, finding.suppressed, finding.suppression_reason) == (
        "KMS011",
        "retiring",
        True,
        "being retired after the migration to the new orders key",
    )
    assert finding.severity is Severity.WARNING


def test_policy_read_from_a_file_is_located_in_that_file() -> None:
    (finding,) = lint_file(FIXTURES / "policy-file" / "stack.yaml")
    assert finding.rule == "KMS001"
    assert finding.path == "keys.shared.policy.Statement[1].Principal"
    assert finding.location is not None
    assert (finding.location.file, finding.location.line, finding.location.column) == (
        "tests/fixtures/lint/policy-file/policies/shared.json",
        14,
        20,
    )
