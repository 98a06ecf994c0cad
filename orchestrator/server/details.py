"""A deployment as `GET /api/v1/deployments/{id}` answers it — and as the dashboard's deployment page shows
it: its view, the live driver, its frozen plan's steps (done, current, pending), its audit trail and its
gates' measurements."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from orchestrator.store import leases
from orchestrator.store import repository as repo
from orchestrator.store.models import ACTIVE_PHASES, Deployment, Phase, utcnow
from orchestrator.store.views import deployment_view, event_view


def plan_steps(deployment: Deployment) -> list[dict[str, Any]]:
    """The frozen plan's steps, each with its state: done, current (an active deployment's next step) or
    pending."""
    from orchestrator.rollout.frozen import FrozenPlan

    if deployment.plan is None:
        return []
    active = Phase(deployment.phase) in ACTIVE_PHASES
    steps = []
    for step in FrozenPlan.from_record(deployment.plan, deployment=deployment.id).steps():
        if step.index < deployment.current_step:
            state = "done"
        elif step.index == deployment.current_step and active:
            state = "current"
        else:
            state = "pending"
        steps.append(
            {
                "index": step.index,
                "wave": step.wave,
                "clusters": list(step.clusters),
                "label": step.label,
                "state": state,
            }
        )
    return steps


def deployment_detail(session: Session, ref: str) -> dict[str, Any]:
    deployment = repo.get_deployment(session, ref)
    view = deployment_view(deployment)
    holder = leases.live_holder(session.connection(), deployment.id, now=utcnow())
    view["driver"] = holder.owner if holder is not None else None
    view["steps"] = plan_steps(deployment)
    view["events"] = [event_view(e) for e in repo.events_for(session, deployment.id)]
    view["measurements"] = [e for e in view["events"] if e["type"] == "measurement"]
    return view
