"""The text renderer: colour by flag only, Terraform-like lines, every part of a change shown."""

from __future__ import annotations

import dataclasses
import re

import pytest
from golden.sample_plan import build_sample_plan

from kmsplan.lint.finding import Finding, Severity
from kmsplan.plan.types import Action, AttributeChange, Change, GateBlock, Plan, Resource, ref
from kmsplan.render import text

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _plan(*changes: Change) -> Plan:
    return Plan(stack="payments", account_id="111122223333", region="eu-west-1", changes=changes)


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"FORCE_COLOR": "1", "TERM": "xterm"}, {}])
def test_colour_follows_the_flag_not_the_environment(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    plan = build_sample_plan()
    assert ANSI.search(text.render(plan, color=True))
    assert not ANSI.search(text.render(plan, color=False))
    assert "\x1b" not in text.render(plan, color=False)


def test_colour_only_adds_escape_codes() -> None:
    plan = build_sample_plan()
    assert ANSI.sub("", text.render(plan, color=True)) == text.render(plan, color=False)


def test_symbols_are_coloured_by_action_and_blocked_is_bold_red() -> None:
    out = text.render(build_sample_plan(), color=True)
    assert "\x1b[32m+ key.orders\x1b[0m will be created" in out
    assert "\x1b[33m~ key.invoices\x1b[0m will be updated in place" in out
    assert "\x1b[31m- alias.alias/payments/legacy\x1b[0m will be deleted" in out
    assert "\x1b[36m↺ key.refunds\x1b[0m will be restored" in out
    assert "\x1b[1;31m! key.legacy\x1b[0m would be scheduled for deletion, but is BLOCKED" in out
    assert '\x1b[32m+        "kms:GenerateDataKey"\x1b[0m' in out  # policy diff + line
    assert '\x1b[31m-      "Action": ["kms:Decrypt"],\x1b[0m' in out  # policy diff - line
    assert "\x1b[1m--- live\x1b[0m" in out


def test_update_shows_attribute_diffs_policy_diff_access_and_calls() -> None:
    out = text.render(build_sample_plan(), color=False)
    block = out.split("  ~ key.invoices")[1].split("\n\n")[0]
    assert '~ description:          "Invoices" → "Invoice PDFs and exports | EU"' in block
    assert "~ rotation.period_days: 365 → 180" in block
    assert "~ policy: 1 statement added, 1 modified, 1 removed" in block
    assert "policy: (policy document" not in block  # shown as the diff, not as a value
    assert "arn:aws:iam::444455556666:root gains kms:Decrypt" in block  # other account in full
    assert "role/invoice-reader gains kms:GenerateDataKey" in block  # own account shortened
    assert "user/legacy-batch loses kms:Decrypt, kms:Encrypt" in block
    assert block.rstrip().endswith(
        "calls: UpdateKeyDescription, EnableKeyRotation, TagResource, PutKeyPolicy"
    )


def test_blocked_change_says_why_and_how_to_unblock() -> None:
    out = text.render(build_sample_plan(), color=False)
    block = out.split("  ! key.legacy")[1]
    assert (
        "      blocked by allow-delete: this run does not allow key deletion\n"
        "        to unblock: run with `--allow-delete`\n"
    ) in block


def test_reference_reads_as_known_after_apply() -> None:
    out = text.render(build_sample_plan(), color=False)
    assert (
        '~ target_key_id: "1234abcd-12ab-34cd-56ef-1234567890ab" → (known after apply: key.orders)'
    ) in out


def test_policy_attribute_without_a_diff_is_summarized_not_dumped() -> None:
    policy = {"Version": "2012-10-17", "Statement": [{"Sid": "A"}, {"Sid": "B"}]}
    change = Change(
        address="key.k",
        resource=Resource.KEY,
        action=Action.UPDATE,
        key="k",
        attributes=(AttributeChange(name="policy", before=None, after=policy),),
    )
    out = text.render(_plan(change), color=False)
    assert "~ policy: null → (policy document, 2 statements)" in out


def test_empty_plan_is_the_header_and_no_changes() -> None:
    assert text.render(_plan(), color=True) == (
        "\x1b[1mkmsplan plan for stack payments, account 111122223333, eu-west-1\x1b[0m\n"
        "\n"
        "No changes. KMS matches the manifests.\n"
    )


def test_summary_line_is_last_and_red_when_blocked() -> None:
    change = Change(
        address="key.k",
        resource=Resource.KEY,
        action=Action.DELETE,
        key="k",
        blocked=(GateBlock(rule="window", reason="window 3 days", unblock="use 7-30"),),
    )
    out = text.render(_plan(change), color=True)
    assert out.endswith(
        "\x1b[1;31mPlan: 0 to add, 0 to change, 0 to delete, 1 blocked. "
        "Monthly cost: $0.00 (KMS list prices: $1/key-month, first two "
        "rotations +$1/month each; requests not counted).\x1b[0m\n"
    )


def test_legend_lists_only_the_symbols_used() -> None:
    plan = build_sample_plan()
    only_create = dataclasses.replace(plan, changes=plan.changes[:1])
    out = text.render(only_create, color=False)
    assert "  + create\n" in out
    assert "update in place" not in out
    assert "blocked by the safety gate" not in out


def test_create_lists_every_attribute_and_the_depends_on_line() -> None:
    change = Change(
        address="alias.alias/x",
        resource=Resource.ALIAS,
        action=Action.CREATE,
        key="x",
        after={"name": "alias/x", "target_key_id": ref("key.x")},
        depends_on=("key.x",),
    )
    out = text.render(_plan(change), color=False)
    assert (
        "  + alias.alias/x will be created\n"
        '      + name:          "alias/x"\n'
        "      + target_key_id: (known after apply: key.x)\n"
        "      after: key.x\n"
    ) in out


def test_created_and_deleted_objects_show_no_unset_attributes() -> None:
    grant = {
        "name": "g",
        "grantee": "arn:aws:iam::111122223333:role/app",
        "operations": ["Decrypt"],
        "retiring_principal": None,
        "constraints": None,
    }
    key = {
        "description": "",
        "enabled": False,
        "rotation": {"enabled": False, "period_days": None},
        "tags": {},
        "aliases": [],
    }
    created = Change(
        address="grant.x.g", resource=Resource.GRANT, action=Action.CREATE, key="x", after=grant
    )
    deleted = Change(
        address="key.y", resource=Resource.KEY, action=Action.DELETE, key="y", before=key
    )
    out = text.render(_plan(created, deleted), color=False)
    assert "null" not in out
    assert "retiring_principal" not in out and "constraints" not in out
    assert "tags" not in out and "aliases" not in out
    # Values that say something stay, false and the empty description included.
    assert '      - description:      ""\n' in out
    assert "      - enabled:          false\n" in out
    assert "      - rotation.enabled: false\n" in out
    assert '      + operations: ["Decrypt"]\n' in out


def test_an_attribute_that_becomes_unset_still_shows_null() -> None:
    change = Change(
        address="key.x",
        resource=Resource.KEY,
        action=Action.UPDATE,
        key="x",
        attributes=(AttributeChange(name="tags.team", before="a", after=None),),
    )
    assert '      ~ tags.team: "a" → null\n' in text.render(_plan(change), color=False)


def test_finding_without_a_location_shows_its_document_path() -> None:
    finding = Finding(
        rule="r1", severity=Severity.ERROR, title="T", message="M", key="k", path="keys.k.policy"
    )
    plan = dataclasses.replace(_plan(), findings=(finding,))
    assert (
        "Lint findings for the keys this plan changes:\n"
        "  error: r1: T\n"
        "      key k, keys.k.policy\n"
        "      M\n"
    ) in text.render(plan, color=False)
