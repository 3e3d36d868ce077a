"""The markdown renderer: a PR comment that user-controlled text cannot break."""

from __future__ import annotations

import dataclasses
import re

from golden.sample_plan import build_sample_plan

from kmsplan.plan.types import Action, AttributeChange, Change, GateBlock, Plan, Resource
from kmsplan.render import markdown

UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def _plan(*changes: Change, **fields: object) -> Plan:
    return Plan(
        stack="payments",
        account_id="111122223333",
        region="eu-west-1",
        changes=changes,
        **fields,  # type: ignore[arg-type]
    )


def _hostile_change() -> Change:
    return Change(
        address="key.evil",
        resource=Resource.KEY,
        action=Action.UPDATE,
        key="evil",
        reason=(
            "a | b <script>alert(1)</script> *bold* [link](http://x) `x|y` it`s $x$\nsecond line"
        ),
        attributes=(AttributeChange(name="tags.a|b", before="x", after="y"),),
        blocked=(
            GateBlock(
                rule="immu|table",
                reason="spec | usage <b>changed</b>",
                unblock="declare a new key; see ## docs",
            ),
        ),
    )


def _table_rows(out: str, header: str) -> list[str]:
    lines = out.splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_table_cells_escape_pipes_so_every_row_keeps_its_columns() -> None:
    out = markdown.render(_plan(_hostile_change()))
    rows = _table_rows(out, "| | Change | Action | What changes | Gate |")
    assert len(rows) == 3
    for row in rows:
        assert len(UNESCAPED_PIPE.findall(row)) == 6, row
    assert "`tags.a\\|b`" in rows[2]
    assert "a \\| b" in rows[2]
    assert "`immu\\|table`" in rows[2]


def test_user_text_cannot_inject_html_or_markdown() -> None:
    out = markdown.render(_plan(_hostile_change()))
    assert "<script>" not in out and "<b>" not in out
    assert "\\<script\\>alert(1)\\</script\\>" in out
    assert "\\*bold\\*" in out
    assert "\\[link\\](http://x)" in out
    assert "`x\\|y` it\\`s" in out  # quoted snippet stays code, a lone backtick is escaped
    assert "\\$x\\$" in out  # GitHub would render $x$ as math
    assert "second line" in out and "\nsecond line" not in out
    assert "\\#\\# docs" in out


def test_only_html_is_details_around_long_policy_diffs() -> None:
    plan = build_sample_plan()
    out = markdown.render(plan)
    assert "<details>" not in out  # the sample's diffs are short
    long_unified = "".join(f"+line {i}\n" for i in range(markdown.FOLD_DIFF_LINES))
    first = plan.changes[0]
    assert first.policy_diff is not None
    folded = dataclasses.replace(
        plan,
        changes=(
            dataclasses.replace(first, policy_diff={**first.policy_diff, "unified": long_unified}),
        ),
    )
    out = markdown.render(folded)
    assert "<details><summary>Policy diff</summary>\n\n```diff\n+line 0\n" in out
    assert f"+line {markdown.FOLD_DIFF_LINES - 1}\n```\n\n</details>" in out
    html = re.findall(r"<[^>]*>", out.replace("\\<", "").replace("\\>", ""))
    assert set(html) == {"<details>", "<summary>", "</summary>", "</details>"}


def test_diff_containing_a_fence_gets_a_longer_fence() -> None:
    plan = build_sample_plan()
    first = plan.changes[0]
    assert first.policy_diff is not None
    tricky = dataclasses.replace(
        plan,
        changes=(
            dataclasses.replace(
                first, policy_diff={**first.policy_diff, "unified": '+"Sid": "```"\n'}
            ),
        ),
    )
    out = markdown.render(tricky)
    assert '````diff\n+"Sid": "```"\n````\n' in out


def test_code_span_with_backticks_uses_a_longer_fence() -> None:
    assert markdown.code("a`b") == "`` a`b ``"
    assert markdown.code("a|b", in_table=True) == "`a\\|b`"
    assert markdown.code("a|b") == "`a|b`"


def test_sample_comment_has_summary_table_blocked_section_policies_and_findings() -> None:
    out = markdown.render(build_sample_plan())
    lines = out.splitlines()
    assert lines[0] == ("### kmsplan plan: stack `payments`, account `111122223333`, `eu-west-1`")
    assert lines[2].startswith(
        "**Plan: 3 to add, 3 to change, 1 to delete, 1 to restore, 1 blocked.** "
        "Monthly cost: +\\$2.00 ("
    )
    assert (
        "| `!` | `key.legacy` | schedule deletion | the key's block is gone from the manifests: "
        "schedule deletion in 30 days | **blocked**: `deletion-protection`, `allow-delete` |"
    ) in lines
    assert (
        "- `allow-delete`: this run does not allow key deletion. "
        "**To unblock:** run with `--allow-delete`."
    ) in lines
    assert "- `user/legacy-batch` **loses** `kms:Decrypt`, `kms:Encrypt`" in lines
    assert "```diff" in lines
    findings = _table_rows(out, "| Severity | Rule | Key | Where | Finding |")
    assert len(findings) == 5
    assert findings[3].startswith("| **error** | `key-management-to-user` | `orders` |")
    assert findings[4].startswith("| warning (suppressed) | `rotation-disabled` |")


def test_empty_plan_comment_says_no_changes_and_has_no_table() -> None:
    out = markdown.render(_plan(kmsplan_version="0.1.0"))
    assert out == (
        "### kmsplan plan: stack `payments`, account `111122223333`, `eu-west-1`\n"
        "\n"
        "**No changes. KMS matches the manifests.**\n"
        "\n"
        "_kmsplan 0.1.0, plan format 2_\n"
    )


def test_backticked_snippets_in_messages_stay_code_spans() -> None:
    assert markdown.text("declare `deletion: {protected: false}` *now*") == (
        "declare `deletion: {protected: false}` \\*now\\*"
    )
    assert markdown.text("use `a|b`", in_table=True) == "use `a\\|b`"
    assert markdown.text("use `<b>`") == "use `<b>`"  # code spans show HTML literally
