"""Click options shared by several commands (one definition each)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from kmsplan.plan.types import GateOptions

F = TypeVar("F", bound=Callable[..., Any])


def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(f: F) -> F:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


paths_argument = click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=False, dir_okay=True)
)

aws_options = _stack(
    click.option("--profile", envvar=None, default=None, help="AWS profile to use."),
    click.option(
        "--region",
        default=None,
        help="AWS Region when the manifest has no region: (else AWS_REGION, profile).",
    ),
    click.option(
        "--endpoint-url",
        default=None,
        help="Endpoint for KMS, STS, IAM and tagging (LocalStack, `kmsplan local-kms`).",
    ),
    click.option(
        "--parallelism",
        type=click.IntRange(1, 64),
        default=16,
        show_default=True,
        help="Concurrent AWS requests.",
    ),
)

lock_options = _stack(
    click.option(
        "--lock",
        "lock",
        metavar="URL",
        default=None,
        help="Stack lock to hold: s3://BUCKET/PREFIX or dynamodb://TABLE; overrides the "
        "manifests' lock:. 'none': no lock.",
    ),
    click.option(
        "--lock-timeout",
        type=click.IntRange(0, 86400),
        default=0,
        show_default=True,
        metavar="SECONDS",
        help="Wait this long for a stack lock another run holds.",
    ),
)

gate_options = _stack(
    click.option("--allow-delete", is_flag=True, help="Allow scheduling deletion of keys."),
    click.option(
        "--allow-delete-all",
        is_flag=True,
        help="Allow a plan that deletes every key of the stack.",
    ),
    click.option(
        "--unused-for",
        "unused_for_days",
        type=click.IntRange(0, 3650),
        default=30,
        show_default=True,
        metavar="DAYS",
        help="Only delete keys with no cryptographic use for this many days.",
    ),
    click.option(
        "--ignore-usage",
        is_flag=True,
        help="Do not block deletion when key usage cannot be determined.",
    ),
    click.option(
        "--allow-alias-takeover",
        is_flag=True,
        help="Allow moving an alias away from a key outside the stack.",
    ),
    click.option(
        "--bypass-policy-lockout-safety-check",
        is_flag=True,
        help="Pass BypassPolicyLockoutSafetyCheck where the manifest asks for it.",
    ),
)


def gate_from_kwargs(kwargs: dict[str, Any]) -> GateOptions:
    """Pop the gate flags out of a command's kwargs into a GateOptions."""
    return GateOptions(
        allow_delete=kwargs.pop("allow_delete"),
        allow_delete_all=kwargs.pop("allow_delete_all"),
        unused_for_days=kwargs.pop("unused_for_days"),
        ignore_usage=kwargs.pop("ignore_usage"),
        allow_alias_takeover=kwargs.pop("allow_alias_takeover"),
        bypass_policy_lockout_safety_check=kwargs.pop("bypass_policy_lockout_safety_check"),
    )
