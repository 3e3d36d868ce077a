"""A local KMS emulator (moto's server) for trying and testing kmsplan without AWS.

It binds 127.0.0.1 only, and answers multi-Region key calls as KMS does (moto's gaps are
fixed by kmsplan.local_kms_patches). Needs the `local` extra (`pip install 'kmsplan[local]'`).
Keys live in memory and vanish when the emulator stops.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from kmsplan import kmsspec
from kmsplan.errors import KmsplanError
from kmsplan.model import Stack

HOST = "127.0.0.1"
DEFAULT_PORT = 4599
REGION = "us-east-1"
ACCOUNT = "123456789012"  # the account the emulator answers as
# Credentials the emulator accepts (any value works; boto3 only needs some).
EMULATOR_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
# Variables that would send the run to real AWS credentials or endpoints.
_CLEARED = (
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_KMS",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_IAM",
)

MISSING_EXTRA = (
    "the local KMS emulator needs the 'local' extra (moto): pip install 'kmsplan[local]'"
)


def _ensure_port_free(port: int) -> None:
    # moto's server would wait forever on a port it cannot bind: check first.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise KmsplanError(
                f"cannot start the local KMS emulator on {HOST}:{port}: {exc.strerror}; "
                "pick another --port"
            ) from None


@contextmanager
def local_kms(port: int | None = None) -> Iterator[str]:
    """Run the emulator for the duration of the block; yields its endpoint URL.

    `port` None picks a free port. The emulator is stopped when the block exits, however
    it exits.
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise KmsplanError(MISSING_EXTRA) from None
    from kmsplan import local_kms_patches

    # moto's multi-Region keys differ from KMS's; the patch layer restores KMS's behaviour.
    local_kms_patches.install()
    if port is not None:
        _ensure_port_free(port)
    # Request lines (and the tracebacks of operations the emulator lacks, such as
    # GetKeyLastUsage) on stderr would drown kmsplan's own output.
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address=HOST, port=port or 0, verbose=False)
    server.start()
    try:
        host, bound_port = server.get_host_and_port()
        yield f"http://{host}:{bound_port}"
    finally:
        server.stop()


@contextmanager
def emulator_environment() -> Iterator[None]:
    """Point this process's AWS configuration at dummy credentials for the block: a demo
    against the emulator must never pick up (and sign with) real AWS credentials."""
    saved = {name: os.environ.get(name) for name in (*EMULATOR_ENV, *_CLEARED)}
    try:
        for name in _CLEARED:
            os.environ.pop(name, None)
        os.environ.update(EMULATOR_ENV)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def stand_in_principals(endpoint: str, stacks: Iterable[Stack]) -> list[str]:
    """Create, in the emulator's empty IAM, the same-account roles and users the stacks'
    policies and grants name (a real account has them already; KMS rejects a policy naming
    one that does not exist). Returns the ARNs created."""
    from kmsplan.aws.client import AwsClients, call
    from kmsplan.errors import AwsError
    from kmsplan.manifest import resolve_variables
    from kmsplan.run import principals_to_check

    iam = AwsClients.create(profile=None, region=REGION, endpoint_url=endpoint).iam
    wanted: set[str] = set()
    for stack in stacks:
        resolved = resolve_variables(stack, account_id=ACCOUNT, region=REGION)
        wanted.update(principals_to_check(resolved, ACCOUNT))
    created = []
    trust = json.dumps({"Version": kmsspec.POLICY_VERSION_CURRENT, "Statement": []})
    for arn in sorted(wanted):
        kind, _, rest = arn.split(":", 5)[5].partition("/")
        path, _, name = rest.rpartition("/")
        iam_path = f"/{path}/" if path else "/"
        try:
            if kind == "role":
                call(
                    iam, "CreateRole", RoleName=name, Path=iam_path, AssumeRolePolicyDocument=trust
                )
            else:
                call(iam, "CreateUser", UserName=name, Path=iam_path)
        except AwsError as exc:
            if exc.code != "EntityAlreadyExists":
                raise
            continue
        created.append(arn)
    return created
