"""What ordering and scheduling cost, without KMS: plans of 1,000 to 10,000 changes applied
through a KMS writer that answers every call at once.

    python -m bench.scheduling [--sizes 1000,4000,8000,10000] [--repeat 3]

Each plan has, per logical key, an update of the key, an alias and a grant created after it,
and the key's trailing disable after its grant; one key in ten is deleted instead (every key
deletion waits for every other change). Printed per size: building the plan graph and its
topological order (what the differ does), and the whole apply with the no-op writer (the
applier's walk of the graph, its threads and its per-call bookkeeping). Linear scheduling
means the time per change stays flat as the plan grows.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from typing import Any

from kmsplan.apply import apply_plan
from kmsplan.aws.writer import Answer
from kmsplan.model import TAG_PROTECTION, TAG_STACK
from kmsplan.plan.graph import PlanGraph
from kmsplan.plan.types import (
    Action,
    Address,
    ApiCall,
    Change,
    GateOptions,
    Plan,
    Resource,
    Step,
)

STACK = "bench"


class NoOpWriter:
    """A KMS writer that answers every call at once, with what the applier reads back."""

    def call(self, operation: str, params: Mapping[str, Any]) -> Answer:
        if operation == "ListResourceTags":
            return Answer(
                body={
                    "Tags": [
                        {"TagKey": TAG_STACK, "TagValue": STACK},
                        {"TagKey": TAG_PROTECTION, "TagValue": "false"},
                    ]
                }
            )
        if operation == "DescribeKey":
            return Answer(
                body={"KeyMetadata": {"KeyId": params["KeyId"], "KeyState": "PendingDeletion"}}
            )
        if operation == "ListGrants":
            return Answer(body={"Grants": []})
        return Answer()


def plan_of(size: int) -> Plan:
    """A plan of about `size` changes (see the module's docstring)."""
    changes: list[Change] = []
    index = 0
    while len(changes) < size:
        name, key_id = f"k{index}", f"id-{index}"
        index += 1
        if index % 10 == 0:
            changes.append(
                Change(
                    address=Address.of_key(name),
                    resource=Resource.KEY,
                    action=Action.DELETE,
                    key=name,
                    before={"key_id": key_id},
                    calls=(
                        ApiCall(
                            operation="ScheduleKeyDeletion",
                            params={"KeyId": key_id, "PendingWindowInDays": 30},
                        ),
                    ),
                )
            )
            continue
        tag = {"KeyId": key_id, "Tags": [{"TagKey": "team", "TagValue": "x"}]}
        grant = {"KeyId": key_id, "GranteePrincipal": "arn:aws:iam::111122223333:role/r"}
        changes += [
            Change(
                address=Address.of_key(name),
                resource=Resource.KEY,
                action=Action.UPDATE,
                key=name,
                calls=(ApiCall(operation="TagResource", params=tag),),
            ),
            Change(
                address=Address.of_alias(f"alias/{name}"),
                resource=Resource.ALIAS,
                action=Action.CREATE,
                key=name,
                calls=(
                    ApiCall(
                        operation="CreateAlias",
                        params={"AliasName": f"alias/{name}", "TargetKeyId": key_id},
                    ),
                ),
            ),
            Change(
                address=Address.of_grant(name, "g"),
                resource=Resource.GRANT,
                action=Action.CREATE,
                key=name,
                calls=(
                    ApiCall(
                        operation="CreateGrant",
                        params={**grant, "Operations": ["Decrypt"], "Name": "kmsplan/g"},
                    ),
                ),
            ),
            Change(
                address=Address.of_key(name, Step.DISABLE),
                resource=Resource.KEY,
                action=Action.UPDATE,
                key=name,
                calls=(ApiCall(operation="DisableKey", params={"KeyId": key_id}),),
            ),
        ]
    return Plan(
        stack=STACK,
        account_id="111122223333",
        region="us-east-1",
        changes=tuple(changes[:size]),
        gate=GateOptions(allow_delete=True, allow_delete_all=True),
    )


def measure(size: int, *, parallelism: int = 16) -> tuple[float, float, int]:
    """(seconds to build the graph and order it, seconds to apply, changes done)."""
    plan = plan_of(size)
    started = time.perf_counter()
    PlanGraph(plan.changes).topological_order()
    ordered = time.perf_counter() - started
    started = time.perf_counter()
    writer = NoOpWriter()
    result = apply_plan(
        plan,
        lambda _placement: writer,
        parallelism=parallelism,
        limiter=None,
        on_event=lambda event: None,
        audit=None,
    )
    applied = time.perf_counter() - started
    return ordered, applied, sum(1 for o in result.outcomes if o.status.value == "done")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scheduling", description=__doc__)
    parser.add_argument("--sizes", default="1000,4000,8000,10000")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args(argv)
    print("| changes | graph + order s | apply (no-op writer) s | apply µs per change |")
    print("|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        runs = [measure(size) for _ in range(args.repeat)]
        ordered = min(r[0] for r in runs)
        applied = min(r[1] for r in runs)
        done = runs[0][2]
        if done != size:
            raise SystemExit(f"{size} changes: only {done} applied")
        print(f"| {size:,} | {ordered:.3f} | {applied:.2f} | {applied / size * 1e6:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
