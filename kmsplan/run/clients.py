"""Credentials and clients for a run: one `AwsClients` per `Placement`, created on first use.

KMS request quotas are per account and Region, so each placement gets its own clients and
its own rate limiter; two changes bound for the same account and Region share them. A stack's
pool serves its home placement (the stack's ``account:``/``region:`` as the run resolved them)
and the Regions of its replicas; callers below the run layer ask for clients by placement.

When a run covers several stacks, their pools share a `Budget`: one rate limiter per account
and Region, whichever stack's clients call it (two stacks in one account and Region share its
quotas; stacks elsewhere do not), and one budget of ``--parallelism`` requests in flight.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kmsplan.aws.client import AwsClients, caller_identity
from kmsplan.aws.inflight import InFlight
from kmsplan.aws.known_principals import KnownPrincipals
from kmsplan.aws.quotas import merged_quotas
from kmsplan.aws.ratelimit import RateLimiter
from kmsplan.errors import KmsplanError
from kmsplan.model import Placement, Role

if TYPE_CHECKING:
    from mypy_boto3_kms.client import KMSClient


@dataclass(frozen=True, slots=True, kw_only=True)
class AwsSettings:
    """What the command line says about AWS: ``--profile``, ``--region``, ``--endpoint-url``
    and ``--parallelism``; and, for a caller embedding kmsplan, request quotas that differ from
    KMS's defaults (an account with raised quotas, a benchmark's scaled ones)."""

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    parallelism: int = 16
    quotas: Mapping[str, float] | None = None


class Budget:
    """What the stacks of one run share: a rate limiter per account and Region, the
    ``--parallelism`` budget of requests in flight, and what IAM said of the principals the
    stacks name."""

    def __init__(self, settings: AwsSettings) -> None:
        self.quotas = settings.quotas
        self.inflight = InFlight(settings.parallelism)
        self.known_principals = KnownPrincipals()
        self._limiters: dict[Placement, RateLimiter] = {}
        self._lock = threading.Lock()

    def limiter(self, placement: Placement, *, first: RateLimiter | None = None) -> RateLimiter:
        """The rate limiter of `placement`: `first` (or a new one) if it has none yet."""
        with self._lock:
            found = self._limiters.get(placement)
            if found is None:
                found = first or RateLimiter(merged_quotas(self.quotas))
                self._limiters[placement] = found
            return found


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
        self,
        settings: AwsSettings,
        *,
        role: Role | None = None,
        session_name: str = "kmsplan",
        budget: Budget | None = None,
    ) -> None:
        self.settings = settings
        # The stack's role: (assumed with the run's credentials) and its session name.
        self.role = role
        self.session_name = session_name
        # Shared with the other stacks of the run, if any.
        self.budget = budget
        self._clients: dict[Placement, AwsClients] = {}
        self._account_id: str | None = None
        # The first clients, made by `connect` (the role assumed there): every other client
        # is made from their session.
        self._first: AwsClients | None = None
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
        clients = self._create(region)
        self._first = clients
        account_id, caller_arn = caller_identity(clients)
        home = Placement(account_id=account_id, region=clients.region)
        if self.budget is not None:
            # The account was not known before STS answered: serve the placement with the
            # limiter the run's other stacks there use, if any (same session, same role).
            shared = self.budget.limiter(home, first=clients.limiter)
            if shared is not clients.limiter:
                clients = self._create(clients.region, limiter=shared)
        with self._lock:
            self._account_id = account_id
            self._clients.setdefault(home, self._filed(clients))
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
            limiter = None if self.budget is None else self.budget.limiter(placement)
            created = self._filed(self._create(placement.region, limiter=limiter))
            self._clients[placement] = created
            return created

    def _filed(self, clients: AwsClients) -> AwsClients:
        """`clients`, asking this pool for their other Regions' clients (a replica's)."""
        account_id = self._account_id
        assert account_id is not None

        def regional(region: str) -> AwsClients:
            return self.clients(Placement(account_id=account_id, region=region))

        known = None if self.budget is None else self.budget.known_principals
        return dataclasses.replace(clients, regional=regional, known_principals=known)

    def _create(self, region: str | None, *, limiter: RateLimiter | None = None) -> AwsClients:
        s = self.settings
        return AwsClients.create(
            profile=s.profile,
            region=region,
            endpoint_url=s.endpoint_url,
            parallelism=s.parallelism,
            quotas=s.quotas,
            limiter=limiter,
            role=self.role,
            session_name=self.session_name,
            inflight=None if self.budget is None else self.budget.inflight,
            session=None if self._first is None else self._first.session,
        )

    def writer(self, placement: Placement) -> KMSClient:
        """The KMS client that writes the changes bound for `placement`."""
        return self.clients(placement).kms
