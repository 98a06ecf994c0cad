"""What a notification says about a phase change, gathered from the store once per delivery.

The failing gate is the last measurement recorded as Failed or Error before the change (the analysis gate
stores every measurement as a `measurement` event with its metric, value and phase: `rollout/gates.py`).
The link is the deployment's page on the orchestrator's public URL (`ORCHESTRATOR_PUBLIC_URL`); without
one there is no page anyone could open, so no link is sent.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from orchestrator.errors import OrchestratorError
from orchestrator.rollout.drift_alerts import DRIFT_EVENT
from orchestrator.settings import PUBLIC_URL_ENV
from orchestrator.store import notifications as outbox
from orchestrator.store import repository as repo
from orchestrator.store.models import DeploymentEvent
from orchestrator.store.views import iso_time

_OUTCOMES = {
    "Progressing": "started",
    "AwaitingApproval": "awaiting approval",
    "AwaitingMerge": "awaiting the merge of its pull request",
    "Succeeded": "succeeded",
    "RolledBack": "rolled back",
    "Aborted": "aborted (rolled back)",
    "Failed": "failed",
}
# An abort while waiting for an approval or a pull request's merge (closed unmerged) withdraws a deployment
# that touched no cluster: still the on-rolled-back trigger (the rollout's end), but not a rollback.
_UNTOUCHED = frozenset({"AwaitingApproval", "AwaitingMerge"})
_WITHDRAWN = "withdrawn before it touched any cluster"


def public_url() -> str | None:
    value = os.environ.get(PUBLIC_URL_ENV, "").strip().rstrip("/")
    return value or None


def deployment_link(deployment_id: uuid.UUID, base: str | None) -> str | None:
    """The deployment's page in the orchestrator's API (the dashboard and the API share the path)."""
    return f"{base}/api/v1/deployments/{deployment_id}" if base else None


@dataclass(frozen=True)
class Gate:
    """The measurement that failed the rollout's gate."""

    metric: str
    value: Any
    phase: str
    cluster: str | None
    step: int | None
    message: str

    @property
    def figure(self) -> str:
        value = self.value[0] if isinstance(self.value, list) and len(self.value) == 1 else self.value
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    @property
    def text(self) -> str:
        where = [self.phase]
        if self.cluster:
            where.append(f"in {self.cluster}")
        if self.step is not None:
            where.append(f"step {self.step}")
        return f"{self.metric} = {self.figure} ({', '.join(where)})"

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": self.value,
            "phase": self.phase,
            "cluster": self.cluster,
            "step": self.step,
            "message": self.message,
        }


@dataclass(frozen=True)
class Drift:
    """A drift found in one cluster (an `on-drift` notification): what differs from which commit."""

    cluster: str
    commit: str
    fields: int
    lines: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "commit": self.commit, "fields": self.fields, "lines": self.lines}


@dataclass(frozen=True)
class Facts:
    deployment_id: uuid.UUID
    service: str
    environment: str
    kind: str
    image: str
    git_commit: str
    deployed_by: str | None
    actor: str | None  # who made this change (an approver, whoever aborted); the deployer otherwise
    trigger: str | None
    phase_from: str
    phase: str
    message: str
    at: str | None
    gate: Gate | None
    link: str | None
    drift: Drift | None = None

    @property
    def outcome(self) -> str:
        if self.drift is not None:
            return f"drifted in {self.drift.cluster}"
        if self.phase == "Aborted" and self.phase_from in _UNTOUCHED:
            return _WITHDRAWN  # nothing was applied, so nothing was rolled back
        return _OUTCOMES.get(self.phase, self.phase)

    @property
    def release(self) -> str:
        return f"{self.image} (commit {self.git_commit[:12]})"

    @property
    def summary(self) -> str:
        if self.drift is not None:
            noun = "field" if self.drift.fields == 1 else "fields"
            return (
                f"{self.service} in {self.environment}: {self.outcome} from commit {self.drift.commit[:12]} "
                f"({self.drift.fields} {noun})"
            )
        text = f"{self.service} to {self.environment}: {self.outcome}"
        if self.gate is not None:
            text += f"; failing gate {self.gate.text}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "summary": self.summary,
            "deployment": {
                "id": str(self.deployment_id),
                "service": self.service,
                "environment": self.environment,
                "kind": self.kind,
                "phase": self.phase,
                "deployed_by": self.deployed_by,
                "release": {"image": self.image, "git_commit": self.git_commit},
                "url": self.link,
            },
            "change": {
                "from": self.phase_from,
                "to": self.phase,
                "actor": self.actor,
                "message": self.message,
                "at": self.at,
            },
            "gate": self.gate.to_json() if self.gate is not None else None,
            "drift": self.drift.to_json() if self.drift is not None else None,
        }


def gather(session: Session, event_id: int, *, trigger: str | None, base_url: str | None) -> Facts:
    """The facts of the phase change recorded as event `event_id`."""
    row = session.get(DeploymentEvent, event_id)
    if row is None:
        raise OrchestratorError(f"audit event {event_id} is gone (its deployment was deleted)")
    data = row.data or {}
    deployment = repo.get_deployment(session, row.deployment_id)
    drift: Drift | None = None
    gate: Gate | None = None
    if row.type == DRIFT_EVENT:  # no phase change: the deployment's phase on both sides
        drift = Drift(
            cluster=str(row.cluster),
            commit=str(data.get("commit")),
            fields=int(data.get("fields") or 0),
            lines=[str(line) for line in data.get("lines") or []],
        )
        phase_from = phase = deployment.phase
    else:
        phase_from, phase = str(data.get("from")), str(data.get("to"))
        failed = outbox.failing_measurement(session.connection(), deployment.id, before=event_id)
        if failed is not None and phase != "Succeeded":
            gate = Gate(
                metric=str(failed.get("metric")),
                value=failed.get("value"),
                phase=str(failed.get("phase")),
                cluster=failed.get("cluster"),
                step=failed.get("step"),
                message=str(failed.get("message") or ""),
            )
    return Facts(
        deployment_id=deployment.id,
        service=deployment.service,
        environment=deployment.environment,
        kind=deployment.kind,
        image=deployment.release.image_ref,
        git_commit=deployment.release.git_commit,
        deployed_by=deployment.actor,
        actor=row.actor,
        trigger=trigger,
        phase_from=phase_from,
        phase=phase,
        message=row.message,
        at=iso_time(row.created_at),
        gate=gate,
        link=deployment_link(deployment.id, base_url),
        drift=drift,
    )
