"""Every example manifest validates, and loads into the stack the demo expects."""

from __future__ import annotations

from pathlib import Path

import pytest

from kmsplan.cli import main
from kmsplan.manifest import load

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
# Each example file or folder is a stack of its own (examples/bad and examples/ci are not).
STACKS = sorted(
    p.relative_to(ROOT).as_posix()
    for p in EXAMPLES.iterdir()
    if p.name not in {"bad", "ci"} and (p.is_dir() or p.suffix in {".yaml", ".yml"})
)


def test_the_examples_cover_the_documented_cases() -> None:
    assert {
        "examples/minimal.yaml",
        "examples/payments",
        "examples/signing.yaml",
        "examples/hmac.yaml",
    } <= set(STACKS)


@pytest.mark.parametrize("example", STACKS)
def test_example_validates(
    example: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    code = main(["validate", example])
    out, err = capsys.readouterr()
    stack = load([example])
    noun = "key" if len(stack.keys) == 1 else "keys"
    assert (code, out, err) == (0, f"OK: {len(stack.keys)} {noun} in stack {stack.name}\n", "")


def test_examples_use_distinct_stacks_and_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    stacks = [load([example]) for example in STACKS]
    names = [s.name for s in stacks]
    aliases = [a for s in stacks for k in s.keys for a in k.aliases]
    assert len(set(names)) == len(names)
    assert len(set(aliases)) == len(aliases)


def test_payments_example_is_a_realistic_multi_file_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    stack = load(["examples/payments"])
    assert len(stack.files) >= 2
    assert [k.name for k in stack.keys] == ["ledger", "orders", "refunds"]
    ledger = stack.key("ledger")
    assert ledger is not None and ledger.policy is not None
    # The ledger policy comes from its own JSON file and is located there.
    assert ledger.source_map["keys.ledger.policy.Statement[0]"].file == (
        "examples/payments/policies/ledger.json"
    )
    assert all(k.grants for k in stack.keys if k.name != "refunds")
    assert all(k.rotation.enabled for k in stack.keys)


@pytest.mark.parametrize("example", STACKS)
def test_every_example_policy_keeps_the_account_root_as_administrator(
    example: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    for key in load([example]).keys:
        if key.policy is None:
            continue
        statements = key.policy["Statement"]
        assert any(
            s["Effect"] == "Allow"
            and s.get("Principal") == {"AWS": "arn:aws:iam::${account_id}:root"}
            and s.get("Action") == "kms:*"
            for s in statements
        ), key.name
        # moto denies DescribeKey to everyone for Deny statements with Resource "*" (string).
        assert not [s for s in statements if s["Effect"] == "Deny" and s["Resource"] == "*"]
