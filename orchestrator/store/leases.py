"""Who drives a deployment: a lease on its row (owner, last heartbeat, expiry).

One engine drives a deployment at a time. It takes the lease before its first step, renews it on a timer
(not on every step: the per-step path stays one UPDATE), and gives it back when it stops. Another process
asking to drive (`resume`, `retry`, a worker) is refused while the lease is live, and takes it over once it
has expired — the owner died without giving it back. Each statement settles the race in the database: the
UPDATE only matches a row that is free, ours, or expired.

Core statements on a Connection, as in `progress.py`: the heartbeat runs beside the rollout's own writes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, or_, select, update

from orchestrator.store.models import Deployment

_deployments = Deployment.metadata.tables[Deployment.__tablename__]
_c = _deployments.c

_TAKE = (
    update(_deployments)
    .where(
        _c.id == bindparam("deployment"),
        or_(
            _c.lease_owner.is_(None),
            _c.lease_owner == bindparam("owner"),
            _c.lease_expires_at <= bindparam("now"),
        ),
    )
    .values(
        lease_owner=bindparam("owner"),
        lease_heartbeat_at=bindparam("now"),
        lease_expires_at=bindparam("until"),
    )
)
_RENEW = (
    update(_deployments)
    .where(_c.id == bindparam("deployment"), _c.lease_owner == bindparam("owner"))
    .values(lease_heartbeat_at=bindparam("now"), lease_expires_at=bindparam("until"))
)
_GIVE_BACK = (
    update(_deployments)
    .where(_c.id == bindparam("deployment"), _c.lease_owner == bindparam("owner"))
    .values(lease_owner=None, lease_heartbeat_at=None, lease_expires_at=None)
)
_READ = select(_c.lease_owner, _c.lease_heartbeat_at, _c.lease_expires_at).where(
    _c.id == bindparam("deployment")
)


@dataclass(frozen=True)
class LeaseHolder:
    owner: str
    heartbeat_at: datetime | None
    expires_at: datetime | None


def take(
    connection: Connection, deployment_id: uuid.UUID, owner: str, *, now: datetime, until: datetime
) -> LeaseHolder | None:
    """Take (or renew) the lease; None when it is ours now, else who holds it (live)."""
    taken = connection.execute(
        _TAKE, {"deployment": deployment_id, "owner": owner, "now": now, "until": until}
    ).rowcount
    if taken:
        return None
    return holder(connection, deployment_id)


def renew(
    connection: Connection, deployment_id: uuid.UUID, owner: str, *, now: datetime, until: datetime
) -> bool:
    """Push the expiry on; False when the lease is no longer ours (it expired and was taken over)."""
    result = connection.execute(
        _RENEW, {"deployment": deployment_id, "owner": owner, "now": now, "until": until}
    )
    return bool(result.rowcount)


def give_back(connection: Connection, deployment_id: uuid.UUID, owner: str) -> None:
    connection.execute(_GIVE_BACK, {"deployment": deployment_id, "owner": owner})


def holder(connection: Connection, deployment_id: uuid.UUID) -> LeaseHolder | None:
    row = connection.execute(_READ, {"deployment": deployment_id}).first()
    if row is None or row.lease_owner is None:
        return None
    # The columns' UTCDateTime type reads them back timezone-aware, on SQLite too.
    return LeaseHolder(row.lease_owner, row.lease_heartbeat_at, row.lease_expires_at)


def live_holder(connection: Connection, deployment_id: uuid.UUID, *, now: datetime) -> LeaseHolder | None:
    """Who holds a live lease on the deployment, if anyone."""
    found = holder(connection, deployment_id)
    if found is None or found.expires_at is None or found.expires_at <= now:
        return None
    return found
