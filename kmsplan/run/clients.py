"""Credentials and clients for a run: one `AwsClients` per `Placement`, created on first use.

KMS request quotas are per account and Region, so each placement gets its own clients and
its own rate limiter; two changes bound for the same account and Region share them. Only the
home placement exists today (the stack's ``account:``/``region:`` as the run resolved them),
but callers below the run layer ask for clients by placement and never assume there is one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kmsplan.aws.client import AwsClients, caller_identity
from kmsplan.errors import KmsplanError
from kmsplan.model import Placement, Role

if TYPE_CHECKING:
    from mypy_boto3_kms.client import KMSClient


@dataclass(frozen=True, slots=True, kw_only=True)
class AwsSettings:
    """What the command line says about AWS: ``--profile``, ``--region``, ``--endpoint-url``
    and ``--parallelism``."""

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    parallelism: int = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Who the credentials are (STS GetCallerIdentity) and the home placement they reached."""

    home: Placement
    caller_arn: str

    @property
    def account_id(self) -> str:
        return self.home.account_id


class ClientPool:
    """`AwsClients` per placement, created lazily and kept for the run."""

    def __init__(
        self, settings: AwsSettings, *, role: Role | None = None, session_name: str = "kmsplan"
    ) -> None:
        self.settings = settings
        # The stack's role: (assumed with the run's credentials) and its session name.
        self.role = role
        self.session_name = session_name
        self._clients: dict[Placement, AwsClients] = {}
        self._account_id: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def adopt(cls, clients: AwsClients, identity: Identity) -> ClientPool:
        """A pool whose home placement is served by existing `clients` (the benchmark's,
        with its own quotas)."""
        pool = cls(
            AwsSettings(
                region=clients.region,
                endpoint_url=clients.endpoint_url,
                parallelism=clients.parallelism,
            )
        )
        pool._account_id = identity.account_id
        pool._clients[identity.home] = clients
        return pool

    def connect(self, region: str | None) -> Identity:
        """Create the clients of `region` (None: the standard chain), ask STS who the
        credentials are, and file the clients under the placement that answer names."""
        s = self.settings
        clients = AwsClients.create(
            profile=s.profile,
            region=region,
            endpoint_url=s.endpoint_url,
            parallelism=s.parallelism,
            role=self.role,
            session_name=self.session_name,
        )
        account_id, caller_arn = caller_identity(clients)
        home = Placement(account_id=account_id, region=clients.region)
        with self._lock:
            self._account_id = account_id
            self._clients.setdefault(home, clients)
        return Identity(home=home, caller_arn=caller_arn)

    def clients(self, placement: Placement) -> AwsClients:
        """The clients of `placement`, created on first use (same credentials, its Region)."""
        with self._lock:
            found = self._clients.get(placement)
            if found is not None:
                return found
            if self._account_id is None:
                raise KmsplanError("internal error: clients requested before connecting")
            if placement.account_id != self._account_id:
                raise KmsplanError(
                    f"no credentials for account {placement.account_id}: the run's credentials "
                    f"are for account {self._account_id}"
                )
            s = self.settings
            created = AwsClients.create(
                profile=s.profile,
                region=placement.region,
                endpoint_url=s.endpoint_url,
                parallelism=s.parallelism,
                role=self.role,
                session_name=self.session_name,
            )
            self._clients[placement] = created
            return created

    def writer(self, placement: Placement) -> KMSClient:
        """The KMS client that writes the changes bound for `placement`."""
        return self.clients(placement).kms
