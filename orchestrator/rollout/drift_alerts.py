"""Drift, once found, recorded in the audit trail so the notifier can announce it (`on-drift`) — once per
new drift, not on every check.

Drift is computed when something reads the clusters (`drift`, `status`, a promotion's check of its source),
and nothing else records it. Each check hands its findings here: a cluster found drifted gets a `drift`
event on the deployment whose commit it was compared with (the latest of the service in the environment),
unless the last drift event of that cluster already says the same thing — the same commit and the same
differences (their fingerprint). A cluster found in sync again after a recorded drift gets `drift_cleared`,
so the same drift coming back later is new again. A check that could not read a cluster (unknown) or found
nothing committed says nothing either way. The row lock taken on the deployment makes two checks at once
record one event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.store import repository as repo
from orchestrator.store.models import ACTIVE_PHASES, Deployment, DeploymentEvent, Phase

DRIFT_EVENT = "drift"
CLEARED_EVENT = "drift_cleared"
SHOWN_LINES = 20  # differences written into the event (and so into a notification); the count is exact


@dataclass(frozen=True)
class Finding:
    """What one check found in one cluster."""

    cluster: str
    state: str  # a DriftState value
    lines: Sequence[str]  # each difference in words
    fields: int


def fingerprint(commit: str, lines: Sequence[str]) -> str:
    return hashlib.sha256("\n".join([commit, *sorted(lines)]).encode()).hexdigest()


def record(
    session: Session, service: str, environment: str, commit: str | None, findings: Sequence[Finding]
) -> list[DeploymentEvent]:
    """Record what is new in `findings` (drift not yet announced, drift gone); the events recorded."""
    if commit is None:
        return []
    latest = repo.latest_deployment(session, service, environment)
    if latest is None or Phase(latest.phase) in ACTIVE_PHASES:
        return []  # nothing deployed to compare with, or a rollout's differences by design
    session.execute(select(Deployment.id).where(Deployment.id == latest.id).with_for_update())
    last = _last_by_cluster(session, latest)
    recorded = []
    for finding in findings:
        before = last.get(finding.cluster)
        if finding.state == "drifted":
            mark = fingerprint(commit, finding.lines)
            if (
                before is not None
                and before.type == DRIFT_EVENT
                and (before.data or {}).get("fingerprint") == mark
            ):
                continue  # already announced
            shown = list(finding.lines[:SHOWN_LINES])
            more = f" (and {len(finding.lines) - len(shown)} more)" if len(finding.lines) > len(shown) else ""
            noun = "field" if finding.fields == 1 else "fields"
            message = (
                f"{service} in {environment}, cluster {finding.cluster}: drifted from commit {commit[:12]} "
                f"({finding.fields} {noun}): " + "; ".join(shown) + more
            )
            data = {"commit": commit, "fingerprint": mark, "fields": finding.fields, "lines": shown}
            recorded.append(
                repo.append_event(
                    session,
                    latest,
                    DRIFT_EVENT,
                    message,
                    cluster=finding.cluster,
                    data=data,
                    actor="drift check",
                )
            )
        elif finding.state == "in sync" and before is not None and before.type == DRIFT_EVENT:
            message = (
                f"{service} in {environment}, cluster {finding.cluster}: back in sync with {commit[:12]}"
            )
            recorded.append(
                repo.append_event(
                    session,
                    latest,
                    CLEARED_EVENT,
                    message,
                    cluster=finding.cluster,
                    data={"commit": commit},
                    actor="drift check",
                )
            )
    return recorded


def _last_by_cluster(session: Session, deployment: Deployment) -> dict[str, DeploymentEvent]:
    rows = session.scalars(
        select(DeploymentEvent)
        .where(
            DeploymentEvent.deployment_id == deployment.id,
            DeploymentEvent.type.in_((DRIFT_EVENT, CLEARED_EVENT)),
        )
        .order_by(DeploymentEvent.seq)
    )
    return {row.cluster: row for row in rows if row.cluster is not None}
