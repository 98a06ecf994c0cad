"""The notifier's side of the store: the cursor on the audit trail, the outbox of deliveries, and the GitHub
deployment mirroring each of ours.

Core statements on a Connection (as `progress.py` and `leases.py`): the notifier runs on its own thread
beside a rollout's writes, and each of its transactions is one or two short statements. Every race between
processes tailing the trail at once is settled by the database: a delivery is inserted once (unique on event
and destination; the loser's insert does nothing), claimed once (an UPDATE that only matches an unclaimed
pending row), and the cursor only moves forward.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from orchestrator.store.models import (
    DeliveryStatus,
    Deployment,
    DeploymentEvent,
    GitHubDeployment,
    NotificationCursor,
    NotificationDelivery,
)

CURSOR = "events"
_tables = Deployment.metadata.tables
_events = _tables[DeploymentEvent.__tablename__]
_deliveries = _tables[NotificationDelivery.__tablename__]
_cursor = _tables[NotificationCursor.__tablename__]
_github = _tables[GitHubDeployment.__tablename__]
_deployments = _tables[Deployment.__tablename__]


@dataclass(frozen=True)
class TrailEvent:
    """An audit event as the notifier reads it."""

    id: int
    deployment_id: uuid.UUID
    type: str
    data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Delivery:
    id: int
    event_id: int
    deployment_id: uuid.UUID
    destination: str
    kind: str
    trigger: str
    attempts: int


# --- the cursor -------------------------------------------------------------------------------------------


def read_cursor(connection: Connection) -> int:
    found = connection.execute(
        select(_cursor.c.event_id).where(_cursor.c.name == CURSOR)
    ).scalar_one_or_none()
    return int(found or 0)


def advance_cursor(connection: Connection, event_id: int, *, now: datetime) -> None:
    """Move the cursor to `event_id` unless another process already moved it further."""
    moved = connection.execute(
        update(_cursor)
        .where(_cursor.c.name == CURSOR, _cursor.c.event_id < event_id)
        .values(event_id=event_id, updated_at=now)
    )
    if (
        moved.rowcount == 0
        and connection.execute(
            select(func.count()).select_from(_cursor).where(_cursor.c.name == CURSOR)
        ).scalar_one()
        == 0
    ):
        _insert_ignoring_duplicates(
            connection, _cursor, [{"name": CURSOR, "event_id": event_id, "updated_at": now}]
        )


def events_after(connection: Connection, event_id: int, *, limit: int) -> list[TrailEvent]:
    """The audit trail after `event_id`, oldest first (every type: the cursor moves past all of them)."""
    rows = connection.execute(
        select(_events.c.id, _events.c.deployment_id, _events.c.type, _events.c.data, _events.c.created_at)
        .where(_events.c.id > event_id)
        .order_by(_events.c.id)
        .limit(limit)
    )
    return [TrailEvent(row.id, row.deployment_id, row.type, row.data or {}, row.created_at) for row in rows]


# --- the outbox -------------------------------------------------------------------------------------------


def _insert_ignoring_duplicates(connection: Connection, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(postgresql.insert(table).on_conflict_do_nothing(), list(rows))
    elif dialect == "sqlite":
        connection.execute(sqlite.insert(table).on_conflict_do_nothing(), list(rows))
    else:  # pragma: no cover - the store supports SQLite and Postgres only (store/db.py)
        connection.execute(insert(table), list(rows))


def enqueue(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Record deliveries (event_id, deployment_id, destination, kind, trigger, next_attempt_at, created_at);
    one already recorded by another process is left as it is."""
    _insert_ignoring_duplicates(
        connection,
        _deliveries,
        [{**row, "status": DeliveryStatus.PENDING.value, "attempts": 0} for row in rows],
    )


def due(connection: Connection, *, now: datetime, limit: int = 20) -> list[Delivery]:
    """Pending deliveries whose time has come and that nobody holds, oldest first, each only when no earlier
    delivery of its deployment to the same destination is still pending: a destination hears about one
    deployment in the order things happened (GitHub's statuses must arrive in order)."""
    earlier = aliased(_deliveries)
    query = (
        select(_deliveries)
        .where(
            _deliveries.c.status == DeliveryStatus.PENDING.value,
            _deliveries.c.next_attempt_at <= now,
            or_(_deliveries.c.claimed_until.is_(None), _deliveries.c.claimed_until < now),
            ~exists().where(
                and_(
                    earlier.c.deployment_id == _deliveries.c.deployment_id,
                    earlier.c.destination == _deliveries.c.destination,
                    earlier.c.status == DeliveryStatus.PENDING.value,
                    earlier.c.event_id < _deliveries.c.event_id,
                )
            ),
        )
        .order_by(_deliveries.c.event_id, _deliveries.c.id)
        .limit(limit)
    )
    return [
        Delivery(r.id, r.event_id, r.deployment_id, r.destination, r.kind, r.trigger, r.attempts)
        for r in connection.execute(query)
    ]


def claim(connection: Connection, delivery_id: int, *, owner: str, now: datetime, until: datetime) -> bool:
    """Hold a delivery while sending it; False when another process holds it or it is no longer pending."""
    claimed = connection.execute(
        update(_deliveries)
        .where(
            _deliveries.c.id == delivery_id,
            _deliveries.c.status == DeliveryStatus.PENDING.value,
            or_(_deliveries.c.claimed_until.is_(None), _deliveries.c.claimed_until < now),
        )
        .values(claimed_by=owner, claimed_until=until)
    )
    return claimed.rowcount == 1


def record_attempt(
    connection: Connection,
    delivery_id: int,
    *,
    owner: str,
    status: DeliveryStatus,
    attempts: int,
    now: datetime,
    next_attempt_at: datetime | None = None,
    error: str | None = None,
) -> None:
    """The outcome of one attempt by the process that claimed the delivery; the claim is released."""
    values: dict[str, Any] = {
        "status": status.value,
        "attempts": attempts,
        "last_error": error,
        "claimed_by": None,
        "claimed_until": None,
    }
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    if status is DeliveryStatus.DELIVERED:
        values["delivered_at"] = now
    connection.execute(
        update(_deliveries)
        .where(_deliveries.c.id == delivery_id, _deliveries.c.claimed_by == owner)
        .values(**values)
    )


def pending_count(connection: Connection, *, before: datetime | None = None) -> int:
    """Pending deliveries (due by `before`, when given)."""
    query = (
        select(func.count())
        .select_from(_deliveries)
        .where(_deliveries.c.status == DeliveryStatus.PENDING.value)
    )
    if before is not None:
        query = query.where(_deliveries.c.next_attempt_at <= before)
    return int(connection.execute(query).scalar_one())


def deliveries_of(connection: Connection, deployment_id: uuid.UUID) -> list[dict[str, Any]]:
    """A deployment's deliveries in the order they were recorded (for people and tests)."""
    rows = connection.execute(
        select(_deliveries).where(_deliveries.c.deployment_id == deployment_id).order_by(_deliveries.c.id)
    )
    return [dict(row._mapping) for row in rows]


def event_of(connection: Connection, event_id: int) -> TrailEvent:
    row = connection.execute(
        select(
            _events.c.id, _events.c.deployment_id, _events.c.type, _events.c.data, _events.c.created_at
        ).where(_events.c.id == event_id)
    ).one()
    return TrailEvent(row.id, row.deployment_id, row.type, row.data or {}, row.created_at)


def failing_measurement(
    connection: Connection, deployment_id: uuid.UUID, *, before: int
) -> dict[str, Any] | None:
    """The last measurement that failed a gate (phase Failed or Error) before event `before`: its metric,
    value, cluster and step. None when the rollout did not stop on a gate."""
    rows = connection.execute(
        select(_events.c.data, _events.c.cluster, _events.c.step)
        .where(
            _events.c.deployment_id == deployment_id,
            _events.c.type == "measurement",
            _events.c.id < before,
        )
        .order_by(_events.c.id.desc())
        .limit(200)
    )
    for data, cluster, step in rows:
        if data and data.get("phase") in ("Failed", "Error"):
            return {**data, "cluster": cluster, "step": step}
    return None


# --- GitHub deployments -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GitHubMirror:
    deployment_id: uuid.UUID
    repository: str
    github_id: int
    statuses_url: str
    last_state: str | None


def github_mirror(connection: Connection, deployment_id: uuid.UUID) -> GitHubMirror | None:
    row = connection.execute(select(_github).where(_github.c.deployment_id == deployment_id)).one_or_none()
    if row is None:
        return None
    return GitHubMirror(row.deployment_id, row.repository, row.github_id, row.statuses_url, row.last_state)


def record_github_mirror(
    connection: Connection,
    deployment_id: uuid.UUID,
    *,
    repository: str,
    github_id: int,
    statuses_url: str,
    now: datetime,
) -> None:
    connection.execute(
        insert(_github).values(
            deployment_id=deployment_id,
            repository=repository,
            github_id=github_id,
            statuses_url=statuses_url,
            created_at=now,
            updated_at=now,
        )
    )


def set_github_state(connection: Connection, deployment_id: uuid.UUID, state: str, *, now: datetime) -> None:
    connection.execute(
        update(_github)
        .where(_github.c.deployment_id == deployment_id)
        .values(last_state=state, updated_at=now)
    )


def replaced_github_mirror(connection: Connection, deployment_id: uuid.UUID) -> GitHubMirror | None:
    """The GitHub deployment a success replaces: the newest other one of the same service, environment and
    repository whose last state is `success` (what was running until now)."""
    this = connection.execute(
        select(_deployments.c.service, _deployments.c.environment, _github.c.repository)
        .join(_github, _github.c.deployment_id == _deployments.c.id)
        .where(_deployments.c.id == deployment_id)
    ).one_or_none()
    if this is None:
        return None
    row = connection.execute(
        select(_github)
        .join(_deployments, _deployments.c.id == _github.c.deployment_id)
        .where(
            _deployments.c.service == this.service,
            _deployments.c.environment == this.environment,
            _github.c.repository == this.repository,
            _github.c.last_state == "success",
            _github.c.deployment_id != deployment_id,
        )
        .order_by(_deployments.c.created_at.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        return None
    return GitHubMirror(row.deployment_id, row.repository, row.github_id, row.statuses_url, row.last_state)


def environments_of(connection: Connection, deployment_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not deployment_ids:
        return {}
    rows = connection.execute(
        select(_deployments.c.id, _deployments.c.environment).where(
            _deployments.c.id.in_(list(deployment_ids))
        )
    )
    return {row.id: row.environment for row in rows}


def services_of(connection: Connection, deployment_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not deployment_ids:
        return {}
    rows = connection.execute(
        select(_deployments.c.id, _deployments.c.service).where(_deployments.c.id.in_(list(deployment_ids)))
    )
    return {row.id: row.service for row in rows}


def plan_of(connection: Connection, deployment_id: uuid.UUID) -> dict[str, Any] | None:
    """The deployment's frozen plan (its rendered sets: what a post-promotion hook's hosts come from)."""
    plan = connection.execute(select(_deployments.c.plan).where(_deployments.c.id == deployment_id)).scalar()
    return dict(plan) if isinstance(plan, dict) else None
