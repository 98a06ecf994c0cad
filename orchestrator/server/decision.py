"""What a webhook delivery asks for, once its payload is read: the rollouts to queue and why not more."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.server.catalog import Catalog
from orchestrator.store.models import DeliveryOutcome


@dataclass(frozen=True)
class Wanted:
    """A rollout a delivery asks for (the delivery's event says which kind: a release promotes the release
    at `git_commit`, any other event deploys the service at it, or at `digest`)."""

    service: str
    environment: str
    git_commit: str | None = None
    digest: str | None = None
    built_repository: str | None = None


@dataclass
class Decision:
    event: str
    repository: str | None
    wanted: list[Wanted] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why (part of) the delivery does nothing
    ping: bool = False

    @property
    def outcome(self) -> DeliveryOutcome:
        if self.ping:
            return DeliveryOutcome.PING
        return DeliveryOutcome.QUEUED if self.wanted else DeliveryOutcome.IGNORED

    @property
    def reason(self) -> str | None:
        return "; ".join(self.reasons) or None


def first_environments(catalog: Catalog, service: str, decision: Decision) -> list[str]:
    """Where a new release of `service` goes first: the first environment of each of its promotion paths
    (none, with the reason in the decision, for a service without a path)."""
    environments = catalog.first_environments.get(service)
    if not environments:
        decision.reasons.append(f"{service}: {catalog.problems.get(service, 'no first environment')}")
        return []
    return environments
