"""The few kmsplan entry points the benchmark drives, in one place.

The benchmark measures kmsplan through the same functions the CLI uses: manifest loading, the
AWS clients (rate limiter and retries included), the live reader, the differ, the applier and
the renderers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kmsplan.model import LiveState, Stack
from kmsplan.plan.types import GateOptions, Plan

REGION = "us-east-1"


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyOutcome:
    ok: bool
    done: int
    failed: int
    detail: str = ""


def load(folder: Path) -> Stack:
    from kmsplan.manifest import load as load_manifest

    return load_manifest([str(folder)])


@contextmanager
def manifest_fast_paths(*, yaml_events: bool, quick_schema: bool) -> Iterator[None]:
    """Inside the block, loading takes the manifest fast paths only where asked: the one-pass
    reader of libyaml events (else every document is composed into nodes and built) and the
    quick schema check (else every document meets jsonschema). The results are the same;
    only the time differs."""
    from kmsplan.manifest import schema, source

    fast_document, surely_valid = source._fast_document, schema._surely_valid
    if not yaml_events:
        source._fast_document = lambda *args, **kwargs: None  # type: ignore[assignment]
    if not quick_schema:
        schema._surely_valid = lambda value: False  # type: ignore[assignment]
    try:
        yield
    finally:
        source._fast_document, schema._surely_valid = fast_document, surely_valid


def clients(
    endpoint: str, *, parallelism: int, quotas: dict[str, float] | None, max_attempts: int = 10
) -> Any:
    from kmsplan.aws.client import AwsClients

    return AwsClients.create(
        profile=None,
        region=REGION,
        endpoint_url=endpoint,
        parallelism=parallelism,
        quotas=quotas,
        max_attempts=max_attempts,
    )


def aws_settings(
    endpoint: str, *, parallelism: int, quotas: Mapping[str, float] | None = None
) -> Any:
    """What the command line would give the run layer: the endpoint and --parallelism; no
    --region (each stack names its own). `quotas` (botocore operation names, e.g.
    "ListGrants"): request quotas in place of the published ones, as for an account whose
    quotas differ; kmsplan passes them to every client and to the limiters its stacks share."""
    from kmsplan.run import AwsSettings

    return AwsSettings(endpoint_url=endpoint, parallelism=parallelism, quotas=quotas)


def plan_each(stacks: Sequence[Stack], settings: Any, *, one_at_a_time: bool) -> tuple[Any, str]:
    """`kmsplan plan` of several loaded stacks (`kmsplan.run.stacks.plan_each`): its outcomes,
    and how it was called. `one_at_a_time`: `max_stacks=1`, each stack planned alone, one
    after another (the stacks still share the run's limiters and --parallelism budget)."""
    from kmsplan.run import stacks as run_stacks

    gate = GateOptions()
    if one_at_a_time:
        outcomes = run_stacks.plan_each(stacks, settings, gate, max_stacks=1)
        return outcomes, "plan_each(stacks, max_stacks=1)"
    return run_stacks.plan_each(stacks, settings, gate), "plan_each(stacks)"


def plan(aws: Any, stack: Stack) -> Plan:
    """`kmsplan plan` after loading, with the benchmark's clients: kmsplan.run.plan_stack
    (identity and account guard, variables, live read with principal checks, usage of
    deletion candidates, diff, lint findings, fingerprint)."""
    from kmsplan import run

    return run.plan_stack(aws, stack, GateOptions())


def resolve(stack: Stack, *, account_id: str, region: str) -> Stack:
    """Fill `${account_id}` and `${region}` (done once per plan, after GetCallerIdentity)."""
    from kmsplan.manifest import resolve_variables

    return resolve_variables(stack, account_id=account_id, region=region)


def diff_resolved(desired: Stack, live: LiveState) -> Plan:
    """The differ alone, on a stack whose variables are already filled."""
    from kmsplan.plan.differ import diff as differ

    return differ(desired, live, GateOptions())


def diff(stack: Stack, live: LiveState) -> Plan:
    """The pure part of a plan: fill variables, diff (what the CPU-only scenario times)."""
    from kmsplan.manifest import resolve_variables
    from kmsplan.plan.differ import diff as differ

    desired = resolve_variables(stack, account_id=live.account_id, region=live.region)
    return differ(desired, live, GateOptions())


def apply(aws: Any, plan_: Plan) -> ApplyOutcome:
    from kmsplan.apply import ChangeStatus, apply_plan
    from kmsplan.aws.writer import writers_for

    result = apply_plan(
        plan_,
        writers_for({plan_.placement: aws.kms}),
        parallelism=aws.parallelism,
        limiter=None,
        on_event=lambda _event: None,
        audit=None,
    )
    failed = result.with_status(ChangeStatus.FAILED)
    return ApplyOutcome(
        ok=bool(result.ok),
        done=len(result.with_status(ChangeStatus.DONE)),
        failed=len(failed),
        detail="; ".join(o.describe() for o in failed[:3]),
    )


def render_text(plan_: Plan) -> str:
    from kmsplan.render.text import render

    return render(plan_, color=False)


def render_json(plan_: Plan) -> str:
    from kmsplan.render.json import render

    text: str = render(plan_)
    return text
