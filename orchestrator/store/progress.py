"""A running rollout's per-step record: where it stands, and a step's completion.

These run once or twice per rollout step, so they are SQLAlchemy Core statements built once at import and
executed on a `Connection` with bound parameters: no ORM unit of work, no statement built per call, and the
compiled form comes from SQLAlchemy's cache. (Through an ORM Session the same three statements cost about
three times the CPU, most of it spent building and keying the statements; `benchmarks/rollout.py` measures
the step.) Everything else the store does goes through `repository.py` and Sessions.

The caller owns the transaction (`engine.begin()`, or `session.connection()` to share a Session's), exactly as
with `repository.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from orchestrator.store.models import ClusterDeployment, Deployment, DeploymentEvent, Phase, utcnow

_tables = Deployment.metadata.tables
_deployments = _tables[Deployment.__tablename__]
_clusters = _tables[ClusterDeployment.__tablename__]
_events = _tables[DeploymentEvent.__tablename__]

_READ = select(_deployments.c.phase, _deployments.c.current_step, _deployments.c.control).where(
    _deployments.c.id == bindparam("deployment")
)
_READ_PHASE = select(_deployments.c.phase).where(_deployments.c.id == bindparam("deployment"))
# Only matches while the deployment is still at the step: completing a step twice records nothing.
_ADVANCE = (
    update(_deployments)
    .where(_deployments.c.id == bindparam("deployment"), _deployments.c.current_step == bindparam("step"))
    .values(
        current_step=bindparam("next_step"),
        last_event_seq=_deployments.c.last_event_seq + 1,
        updated_at=bindparam("now"),
    )
    .returning(_deployments.c.last_event_seq, _deployments.c.actor)
)
_STEP_COMPLETED = insert(_events).values(
    deployment_id=bindparam("deployment"),
    seq=bindparam("seq"),
    type="step_completed",
    step=bindparam("step"),
    message=bindparam("message"),
    data=bindparam("data"),
    actor=bindparam("actor"),
    created_at=bindparam("now"),
)
_SET_CLUSTERS = (
    update(_clusters)
    .where(
        _clusters.c.deployment_id == bindparam("deployment"),
        _clusters.c.cluster.in_(bindparam("names", expanding=True)),
    )
    .values(
        canary_weight=bindparam("canary_weight"),
        stable_weight=bindparam("stable_weight"),
        phase=bindparam("phase"),
        updated_at=bindparam("now"),
    )
)
_SET_CLUSTERS_WITH_MESSAGE = _SET_CLUSTERS.values(message=bindparam("message"))


@dataclass(frozen=True)
class Progress:
    """The columns a running rollout reads before every step."""

    phase: Phase
    current_step: int
    control: dict[str, Any]  # pause reasons, approvals (rollout/control.py); small, unlike the frozen plan


def read_progress(connection: Connection, deployment_id: uuid.UUID) -> Progress:
    phase, current_step, control = connection.execute(_READ, {"deployment": deployment_id}).one()
    return Progress(Phase(phase), current_step, control or {})


def read_phase(connection: Connection, deployment_id: uuid.UUID) -> Phase:
    return Phase(connection.execute(_READ_PHASE, {"deployment": deployment_id}).scalar_one())


def advance_step(
    connection: Connection,
    deployment_id: uuid.UUID,
    *,
    step: int,
    message: str,
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> bool:
    """Record that `step` is done: `current_step` moves past it and a `step_completed` event is appended.

    False, and nothing recorded, when the deployment is no longer at `step` (a resumed twin or an approval
    moved it on). The event is numbered from the same counter as `repository.append_event`, in the same row
    lock, so the audit trail stays gapless.
    """
    moment = now or utcnow()
    advanced = connection.execute(
        _ADVANCE, {"deployment": deployment_id, "step": step, "next_step": step + 1, "now": moment}
    ).one_or_none()
    if advanced is None:
        return False
    seq, actor = advanced  # the step runs on behalf of whoever started the deployment
    connection.execute(
        _STEP_COMPLETED,
        {
            "deployment": deployment_id,
            "seq": seq,
            "step": step,
            "message": message,
            "data": data,
            "actor": actor,
            "now": moment,
        },
    )
    return True


def set_cluster_weights(
    connection: Connection,
    deployment_id: uuid.UUID,
    names: Collection[str],
    *,
    canary_weight: int,
    phase: Phase,
    message: str | None = None,
    now: datetime | None = None,
) -> None:
    """Every named cluster's weights and phase in one UPDATE (one statement per step, not per cluster)."""
    if not names:
        return
    values: dict[str, Any] = {
        "deployment": deployment_id,
        "names": list(names),
        "canary_weight": canary_weight,
        "stable_weight": 100 - canary_weight,
        "phase": phase.value,
        "now": now or utcnow(),
    }
    if message is None:
        connection.execute(_SET_CLUSTERS, values)
    else:
        connection.execute(_SET_CLUSTERS_WITH_MESSAGE, {**values, "message": message})
