"""`kmsplan demo [PATH]`: the whole workflow against a local KMS emulator, no AWS account.

On the example manifests (each file or folder in PATH is its own stack):

1. validate them;
2. plan against the empty emulator;
3. apply the plan;
4. plan again: it must show no changes (the demo fails loudly otherwise);
5. plan a deletion — one key removed from a manifest — and show the safety gate block it;
6. envelope encryption with a key it created, through its alias: GenerateDataKey, encrypt a
   document locally with the plaintext data key, drop that key, Decrypt the data key through
   KMS, decrypt the document, compare;
7. release a key from one stack (`released:`: its kmsplan tags are removed, nothing else),
   then adopt it into another: `kmsplan import` writes its manifest, the plan shows only the
   adoption (one TagResource), apply, and the plan is clean.

The emulator binds 127.0.0.1 on a free port and is stopped however the demo ends.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import yaml

from kmsplan.errors import ExitCode, KmsplanError, RefusedError
from kmsplan.model import Key, Stack
from kmsplan.plan.types import GateOptions, Plan

MANIFEST_SUFFIXES = (".yaml", ".yml")
SAMPLE_DOCUMENT = (
    "Envelope encryption, as KMS users practise it:\n"
    "1. ask KMS for a data key: it returns the key in plaintext and encrypted under a KMS key;\n"
    "2. encrypt the data locally with the plaintext data key, then forget that key;\n"
    "3. store the encrypted data next to the encrypted data key;\n"
    "4. to read it, KMS decrypts the data key, and the data is decrypted locally.\n"
)


class DemoFailed(KmsplanError):
    """A demo step did not show what it must show."""


def _say(text: str = "") -> None:
    click.echo(text)


def _step(number: int, title: str, what: str) -> None:
    _say()
    _say(click.style(f"== {number}. {title} ==", bold=True))
    _say(what)
    _say()


def _is_manifest(path: Path) -> bool:
    """A YAML file that declares a stack (examples/ also holds CI workflows and the like)."""
    if not (path.is_file() and path.suffix in MANIFEST_SUFFIXES):
        return False
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return re.search(r"^stack:", text, flags=re.MULTILINE) is not None


def find_stacks(root: Path) -> list[Path]:
    """Each manifest directly in `root`, and each folder holding manifests, is a stack."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise KmsplanError(f"{root}: no such file or folder of example manifests")
    stacks = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if _is_manifest(entry) or (entry.is_dir() and any(map(_is_manifest, entry.iterdir()))):
            stacks.append(entry)
    if not stacks:
        raise KmsplanError(f"{root}: no manifests (*.yaml, *.yml) found")
    return stacks


def default_examples() -> Path:
    """`examples` in the current folder, else the one beside the installed package."""
    here = Path("examples")
    if here.is_dir():
        return here
    beside = Path(__file__).resolve().parents[2] / "examples"
    return beside if beside.is_dir() else here


@click.command("demo", short_help="Try validate, plan and apply on a local emulator, no AWS.")
@click.argument("path", required=False, type=click.Path(path_type=Path))
def command(path: Path | None) -> int:
    """Try kmsplan with no AWS account: validate, plan, apply, plan again (no changes), watch
    the safety gate refuse a deletion, and do an envelope-encryption round trip — all against
    a local KMS emulator on 127.0.0.1 that is stopped at the end.

    PATH is a folder of example manifests (each file or sub-folder is one stack; default:
    examples) or one manifest. Needs the 'local' extra: pip install 'kmsplan[local]'.
    """
    from kmsplan.local_kms import emulator_environment, local_kms

    root = path if path is not None else default_examples()
    stacks = find_stacks(root)
    _say("Starting a local KMS emulator (moto) on 127.0.0.1...")
    with local_kms() as endpoint:
        try:
            _say(f"Local KMS emulator: {endpoint} (in memory; nothing leaves this machine)")
            with emulator_environment():
                run_demo(stacks, endpoint)
        finally:
            _say("\nStopping the local KMS emulator.")
    return int(ExitCode.OK)


def run_demo(all_stacks: list[Path], endpoint: str) -> None:
    from kmsplan.local_kms import ACCOUNT, stand_in_principals
    from kmsplan.manifest import load

    _step(1, "Validate", "Check every manifest (YAML, schema, KMS rules) before any AWS call.")
    desired: dict[Path, Stack] = {}
    for stack_path in all_stacks:
        loaded = load([str(stack_path)])
        count = len(loaded.keys)
        _say(f"{stack_path}: OK, {count} key(s) in stack {loaded.name}")
        if loaded.account not in (None, ACCOUNT):
            # The account guard would refuse it, as it must: not a stack for the emulator.
            _say(f"  (pinned to account {loaded.account}: not used against the emulator)")
            continue
        desired[stack_path] = loaded
    stacks = list(desired)
    if not stacks:
        raise DemoFailed("demo failed: no example stack can run against the emulator")
    created = stand_in_principals(endpoint, desired.values())
    if created:
        _say()
        _say(
            f"The emulator's IAM starts empty: created the {len(created)} role(s)/user(s) the "
            "examples name, which a real account would already have:"
        )
        for arn in created:
            _say(f"  {arn}")

    _step(2, "Plan", "Compare the manifests with live KMS: the emulator starts empty.")
    plans = {p: _plan(p, endpoint) for p in stacks}
    for p in stacks:
        _say(_render(plans[p]))

    _step(3, "Apply", "Make the changes (approval is automatic in the demo).")
    for stack_path in stacks:
        _say(f"-- stack {plans[stack_path].stack} ({stack_path})")
        _apply(plans[stack_path], stack_path, endpoint)

    _step(4, "Plan again", "After an apply, a plan of the same manifests shows no changes.")
    for stack_path in stacks:
        again = _plan(stack_path, endpoint)
        _say(_render(again))
        if again.has_changes:
            raise DemoFailed(
                f"demo failed: {stack_path} still has {len(again.changes)} change(s) after apply: "
                + ", ".join(c.address for c in again.changes)
            )

    # The stack with the most keys: removing one key is then not also a mass deletion.
    victim_stack = max(stacks, key=lambda p: len(desired[p].keys))
    victim = desired[victim_stack].keys[0]
    _step(
        5,
        "The safety gate",
        f"Remove key {victim.name!r} from {victim_stack} and plan: deleting a key destroys "
        "every byte ever encrypted under it, so kmsplan refuses unless every condition holds.",
    )
    _show_gate(victim_stack, victim.name, endpoint)

    _step(
        6,
        "Envelope encryption",
        "Encrypt a document with a data key from a key the demo created, addressed by its alias.",
    )
    _envelope_round_trip(desired, endpoint)

    _step(
        7,
        "Release and adopt a key",
        "Stack legacy releases its key (released:), leaving it unmanaged, like a key made in "
        "the console; `kmsplan import` writes a manifest that adopts it into stack adopted, "
        "the plan is one TagResource, apply, plan again.",
    )
    _adopt_existing_key(endpoint)


def _adopt_existing_key(endpoint: str) -> None:
    from kmsplan.aws.client import AwsClients
    from kmsplan.aws.inventory import read_inventory
    from kmsplan.commands.import_keys import write_files
    from kmsplan.local_kms import ACCOUNT, REGION
    from kmsplan.manifest.writer import imported_set

    with tempfile.TemporaryDirectory(prefix="kmsplan-demo-") as tmp:
        # A key kmsplan does not own: made by a stack, then released from it (in a real
        # account: made in the console, by a script or another tool).
        legacy = Path(tmp) / "legacy.yaml"
        block = {"description": "made before this stack", "aliases": ["alias/demo/reports"]}
        legacy.write_text(
            yaml.safe_dump(
                {"version": 1, "stack": "legacy", "keys": {"reports": block}}, sort_keys=False
            )
        )
        _apply(_plan(legacy, endpoint), legacy, endpoint)
        legacy.write_text(
            yaml.safe_dump(
                {"version": 1, "stack": "legacy", "released": ["reports"]}, sort_keys=False
            )
        )
        release = _plan(legacy, endpoint)
        _say(_render(release))
        _apply(release, legacy, endpoint)
        _say()

        clients = AwsClients.create(profile=None, region=REGION, endpoint_url=endpoint)
        inventory = read_inventory(
            clients,
            ["alias/demo/reports"],
            every_unowned=False,
            stack="adopted",
            account_id=ACCOUNT,
        )
        written = imported_set(
            inventory.keys, stack="adopted", account_id=inventory.account_id, region=REGION
        )
        folder = Path(tmp) / "adopted"
        write_files(folder, written.files, force=False)
        manifest = next(iter(written.files))
        _say(f"$ kmsplan import alias/demo/reports --stack adopted --out adopted/  -> {manifest}:")
        _say(written.files[manifest].rstrip("\n"))
        _say()
        plan = _plan(folder, endpoint)
        _say(_render(plan))
        calls = [call.operation for change in plan.changes for call in change.calls]
        if calls != ["TagResource"]:
            raise DemoFailed(f"demo failed: the adoption plan makes {calls}, not one TagResource")
        _apply(plan, folder, endpoint)
        again = _plan(folder, endpoint)
    _say(_render(again))
    if again.has_changes:
        raise DemoFailed("demo failed: the adopted key still has changes after apply")


def _render(plan: Plan) -> str:
    from kmsplan.render import text

    return text.render(plan, color=False).rstrip("\n")


def _plan(path: Path, endpoint: str, gate: GateOptions | None = None) -> Plan:
    from kmsplan.local_kms import REGION
    from kmsplan.run import AwsSettings, Intent, open_stack

    aws = AwsSettings(region=REGION, endpoint_url=endpoint, parallelism=4)
    with open_stack([str(path)], aws, intent=Intent.PLAN) as session:
        return session.plan(gate or GateOptions())


def _apply(plan: Plan, path: Path, endpoint: str) -> None:
    from kmsplan.commands.apply import progress_line, report
    from kmsplan.local_kms import REGION
    from kmsplan.run import AwsSettings, Intent, open_stack

    aws = AwsSettings(region=REGION, endpoint_url=endpoint, parallelism=4)
    with open_stack([str(path)], aws, intent=Intent.APPLY) as session:
        result = session.apply(plan, on_event=lambda event: _say(progress_line(event)), audit=None)
    _say(report(result).lstrip("\n"))
    if not result.ok:
        raise DemoFailed(f"demo failed: apply of stack {plan.stack} did not complete")


def _show_gate(stack_path: Path, key_name: str, endpoint: str) -> None:
    from kmsplan.apply import check_plan

    with tempfile.TemporaryDirectory(prefix="kmsplan-demo-") as tmp:
        trimmed = without_key(stack_path, key_name, Path(tmp))
        plan = _plan(trimmed, endpoint)
    _say(_render(plan))
    if not plan.blocked:
        raise DemoFailed(f"demo failed: the safety gate did not block deleting key {key_name!r}")
    _say()
    _say("What `kmsplan apply` does with this plan — it refuses before any change:")
    try:
        check_plan(plan)
    except RefusedError as refusal:
        _say(refusal.render())
    else:
        raise DemoFailed("demo failed: apply would have accepted a blocked plan")


def without_key(stack_path: Path, key_name: str, into: Path) -> Path:
    """A copy of the stack's manifests in `into`, without key `key_name`. Policy files stay
    where they are (their paths are made absolute)."""
    files = (
        [stack_path] if stack_path.is_file() else sorted(filter(_is_manifest, stack_path.iterdir()))
    )
    out_dir = into / "stack"
    out_dir.mkdir()
    for source in files:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
        keys = document.get("keys") if isinstance(document, dict) else None
        if isinstance(keys, dict):
            keys.pop(key_name, None)
            for block in keys.values():
                _absolute_policy_file(block, source.parent)
        (out_dir / source.name).write_text(yaml.safe_dump(document, sort_keys=False))
    return out_dir


def _absolute_policy_file(block: Any, base: Path) -> None:
    policy = block.get("policy") if isinstance(block, dict) else None
    if isinstance(policy, dict) and isinstance(policy.get("file"), str):
        policy["file"] = str((base / policy["file"]).resolve())


def _encryption_keys(desired: dict[Path, Stack]) -> Iterator[Key]:
    for stack in desired.values():
        for key in stack.keys:
            if key.is_symmetric_encryption and key.enabled and key.aliases:
                yield key


def _envelope_round_trip(desired: dict[Path, Stack], endpoint: str) -> None:
    from kmsplan import envelope
    from kmsplan.aws.client import AwsClients
    from kmsplan.local_kms import REGION

    key = next(_encryption_keys(desired), None)
    if key is None:
        raise DemoFailed("demo failed: no enabled symmetric key with an alias to encrypt with")
    alias = key.aliases[0]
    kms = AwsClients.create(profile=None, region=REGION, endpoint_url=endpoint).kms
    context = {"purpose": "kmsplan-demo"}
    with tempfile.TemporaryDirectory(prefix="kmsplan-demo-") as tmp:
        document = Path(tmp) / "document.txt"
        sealed_path = Path(tmp) / "document.txt.envelope.json"
        document.write_text(SAMPLE_DOCUMENT, encoding="utf-8")
        original = document.read_bytes()
        _say(f"Document: {len(original)} bytes of text.")

        sealed = envelope.encrypt(kms, alias, original, context=context)
        sealed_path.write_text(sealed.to_json(), encoding="utf-8")
        _say(f"1. GenerateDataKey(KeyId={alias}, KeySpec=AES_256): a 256-bit data key, in")
        _say(f"   plaintext and encrypted under {sealed.key_id}.")
        _say(
            f"2. Encrypted the document locally with AES-256-GCM: {len(sealed.ciphertext)} bytes; "
            "the plaintext data key was then wiped."
        )
        _say(
            f"3. Stored the ciphertext with the {len(sealed.encrypted_data_key)}-byte encrypted "
            f"data key in {sealed_path.name}."
        )

        restored = envelope.decrypt(kms, envelope.Envelope.from_json(sealed_path.read_text()))
        _say("4. Decrypt: KMS decrypted the data key; the document was decrypted locally.")
    if restored != original:
        raise DemoFailed("demo failed: the decrypted document differs from the original")
    _say(f"Round trip OK: the decrypted document matches the original ({len(restored)} bytes).")
