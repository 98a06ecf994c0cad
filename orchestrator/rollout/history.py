"""A service's past deployments, newest first, with their audit trails: `history` and the REST API alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from orchestrator.config import Project
from orchestrator.errors import UnknownNameError
from orchestrator.store import repository
from orchestrator.store.models import Deployment
from orchestrator.store.views import deployment_view, event_view


def deployments(
    session: Session, project: Project, service: str, environment: str | None, limit: int
) -> list[Deployment]:
    """The deployments; a name never seen (in the project or the store) is UnknownNameError (exit 2)."""
    found = repository.list_deployments(session, service, environment, limit=limit)
    # A service whose pipeline was removed keeps its history; a name never seen is a typo.
    if service not in project.service_names and not repository.list_deployments(
        session, service, None, limit=1
    ):
        raise UnknownNameError("service", service, project.service_names)
    if not found and environment and environment not in project.environment_names:
        raise UnknownNameError("environment", environment, project.environment_names)
    return found


def with_events(session: Session, deployment: Deployment) -> dict[str, Any]:
    """The deployment's view and its audit trail: every step, gate measurement (value, phase, query) and
    transition."""
    view = deployment_view(deployment)
    view["events"] = [event_view(e) for e in repository.events_for(session, deployment.id)]
    return view
