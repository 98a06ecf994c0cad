"""`/api/v1` for rollouts: deployments (list, get with steps, events and measurements), deploy, the controls
(approve, pause, resume, abort, retry), status, history and releases.

Every route needs a token (reads too). A changing route checks `rules.require` in the deployment's
environment before anything is rendered or recorded, then acts through the engine and hands the driving to
the jobs: a request returns once the deployment is recorded (202), never after the rollout.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from sqlalchemy.orm import Session

from orchestrator.identity.principal import Principal
from orchestrator.identity.rules import Action, require
from orchestrator.server.api import schemas
from orchestrator.server.api.auth import Caller
from orchestrator.server.rollouts import ServerRollouts
from orchestrator.store import leases
from orchestrator.store import repository as repo
from orchestrator.store.models import ACTIVE_PHASES, Phase, utcnow
from orchestrator.store.transitions import Event
from orchestrator.store.views import deployment_view, event_view, release_view

router = APIRouter(tags=["deployments"])

DeploymentRef = Annotated[
    str,
    Path(
        min_length=4,
        max_length=36,
        description="the deployment's id, or its first 4+ hex digits",
        pattern=r"^[0-9a-fA-F-]+$",
    ),
]
Limit = Annotated[int, Query(ge=1, le=10_000)]
# A service or environment name: a DNS label, as the configuration allows (and never a byte Postgres refuses).
Name = Annotated[str | None, Query(min_length=1, max_length=253, pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")]


def _rollouts(request: Request) -> ServerRollouts:
    rollouts: ServerRollouts = request.app.state.rollouts
    return rollouts


def _sessions(request: Request) -> Any:
    return request.app.state.sessions


def _hand_over(request: Request, deployment_id: uuid.UUID, reason: str) -> str | None:
    """Queue a job to drive the deployment unless a live driver holds it (it reads the change itself);
    returns that driver."""
    holder = _rollouts(request).engine().driver(deployment_id)
    if holder is not None:
        return holder.owner
    request.app.state.jobs.enqueue_rollout(deployment_id, reason=reason)
    return None


def _view(session: Session, deployment_id: uuid.UUID) -> dict[str, Any]:
    return deployment_view(repo.get_deployment(session, deployment_id))


def _authorized(request: Request, caller: Principal, action: Action, ref: str) -> uuid.UUID:
    """The deployment's id, once the caller may do `action` in its environment (404 when there is none)."""
    with _sessions(request)() as session:
        deployment = repo.get_deployment(session, ref)
        deployment_id, environment = deployment.id, deployment.environment
    require(caller, action, _rollouts(request).project().environment(environment))
    return deployment_id


def _steps(deployment: Any) -> list[dict[str, Any]]:
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


# --- reading ----------------------------------------------------------------------------------------------


@router.get("/deployments", response_model=list[schemas.Deployment])
def list_deployments(
    request: Request,
    caller: Caller,  # noqa: ARG001  (reads need a token too)
    service: Name = None,
    environment: Name = None,
    limit: Limit = repo.DEFAULT_HISTORY_LIMIT,
) -> list[dict[str, Any]]:
    """Deployments, newest first (of one service, in one environment)."""
    with _sessions(request)() as session:
        return [deployment_view(d) for d in repo.list_deployments(session, service, environment, limit=limit)]


@router.get("/deployments/{ref}", response_model=schemas.DeploymentDetail)
def get_deployment(request: Request, caller: Caller, ref: DeploymentRef) -> dict[str, Any]:  # noqa: ARG001
    """The deployment with its clusters, its plan's steps, its audit trail and its gates' measurements."""
    with _sessions(request)() as session:
        deployment = repo.get_deployment(session, ref)
        view = deployment_view(deployment)
        holder = leases.live_holder(session.connection(), deployment.id, now=utcnow())
        view["driver"] = holder.owner if holder is not None else None
        view["steps"] = _steps(deployment)
        view["events"] = [event_view(e) for e in repo.events_for(session, deployment.id)]
    view["measurements"] = [e for e in view["events"] if e["type"] == "measurement"]
    return view


@router.get("/deployments/{ref}/events", response_model=list[schemas.Event])
def deployment_events(
    request: Request,
    caller: Caller,  # noqa: ARG001
    ref: DeploymentRef,
    after: Annotated[int, Query(ge=0, le=2**31, description="only events after this seq")] = 0,
) -> list[dict[str, Any]]:
    """The deployment's audit trail in order (after an event already seen): what a client follows."""
    with _sessions(request)() as session:
        deployment = repo.get_deployment(session, ref)
        return [event_view(e) for e in repo.events_for(session, deployment.id, after_seq=after)]


@router.get("/releases", response_model=list[schemas.Release])
def list_releases(
    request: Request,
    caller: Caller,  # noqa: ARG001
    service: Name = None,
    limit: Limit = repo.DEFAULT_HISTORY_LIMIT,
) -> list[dict[str, Any]]:
    """Releases (service, commit, image digest, manifest hash), newest first."""
    with _sessions(request)() as session:
        return [release_view(r) for r in repo.list_releases(session, service, limit=limit)]


@router.get("/services/{service}/releases", response_model=list[schemas.ReleaseTrail])
def release_trails(
    request: Request,
    caller: Caller,  # noqa: ARG001
    service: Annotated[str, Path(min_length=1, max_length=253)],
    limit: Limit = repo.DEFAULT_HISTORY_LIMIT,
) -> list[dict[str, Any]]:
    """What `orchestrator releases SERVICE -o json` shows: its releases with where each Succeeded."""
    from orchestrator.runtime import release_trails as trails

    return trails(_rollouts(request).project(), _sessions(request), service, limit)


@router.get("/status", response_model=list[schemas.Status])
def status(
    request: Request,
    caller: Caller,  # noqa: ARG001
    service: Name = None,
    environment: Name = None,
) -> list[dict[str, Any]]:
    """What `orchestrator status` shows: the newest deployment of each service in each environment beside
    what each of its clusters runs now (read live), with every disagreement named."""
    from orchestrator.runtime import status as read_status

    return read_status(_rollouts(request).project(), _sessions(request), service, environment)


@router.get("/drift", response_model=list[dict[str, Any]])
def drift(
    request: Request,
    caller: Caller,  # noqa: ARG001
    service: Name = None,
    environment: Name = None,
) -> list[dict[str, Any]]:
    """What `orchestrator drift -o json` shows: the live objects that no longer hold what was last
    committed for them, by field (the reports of `rollout/drift.py`)."""
    from orchestrator.runtime import drift as read_drift

    reports = read_drift(_rollouts(request).project(), _sessions(request), service, environment)
    return [report.to_json() for report in reports]


@router.get("/services/{service}/history", response_model=list[schemas.HistoryEntry])
def history(
    request: Request,
    caller: Caller,  # noqa: ARG001
    service: Annotated[str, Path(min_length=1, max_length=253)],
    environment: Name = None,
    limit: Limit = repo.DEFAULT_HISTORY_LIMIT,
) -> list[dict[str, Any]]:
    """What `orchestrator history SERVICE -o json` shows: past deployments with their audit trails."""
    from orchestrator.rollout import history as histories

    with _sessions(request)() as session:
        found = histories.deployments(session, _rollouts(request).project(), service, environment, limit)
        return [histories.with_events(session, d) for d in found]


@router.get("/stats", response_model=dict[str, Any])
def stats(
    request: Request,
    caller: Caller,  # noqa: ARG001
    service: Name = None,
    environment: Name = None,
    since: Annotated[str, Query(pattern=r"^[0-9]{1,6}[hdwHDW]$", description="12h, 30d, 2w")] = "30d",
) -> dict[str, Any]:
    """What `orchestrator stats -o json` shows: DORA's four keys with their 2024 tiers, from the store."""
    from orchestrator.runtime import stats as figures

    project = _rollouts(request).project()
    return figures(
        project, _sessions(request), service=service, environment=environment, since=since, key="since"
    )


# --- changing ---------------------------------------------------------------------------------------------


@router.post("/deployments", status_code=202, response_model=schemas.Deployment)
def deploy(request: Request, response: Response, caller: Caller, body: schemas.DeployBody) -> dict[str, Any]:
    """Render SERVICE for ENVIRONMENT from the server's checkout, record the release and the deployment,
    and queue its rollout with the service's strategy. When the environment requires an approval the
    deployment is recorded AwaitingApproval, nothing touched: `approve` starts it."""
    from orchestrator.runtime import deploy_request

    rollouts = _rollouts(request)
    project = rollouts.project()
    project.pipeline(body.service)  # an unknown service or environment is bad input, said first
    require(caller, Action.DEPLOY, project.environment(body.environment))
    deploy = deploy_request(
        project,
        _sessions(request),
        caller,
        service=body.service,
        environment=body.environment,
        image=body.image,
        assignments=body.set,
        strategy=body.strategy,
    )
    deployment_id = rollouts.create(deploy, principal=caller, override_freeze=body.override_freeze)
    request.app.state.jobs.enqueue_rollout(deployment_id, reason="deploy")
    response.headers["Location"] = f"/api/v1/deployments/{deployment_id}"
    with _sessions(request)() as session:
        return _view(session, deployment_id)


def _outcome(request: Request, deployment_id: uuid.UUID, message: str, driver: str | None) -> dict[str, Any]:
    with _sessions(request)() as session:
        return {"message": message, "driver": driver, "deployment": _view(session, deployment_id)}


@router.post("/deployments/{ref}/approve", response_model=schemas.ControlOutcome)
def approve(
    request: Request,
    caller: Caller,
    ref: DeploymentRef,
    body: Annotated[schemas.ApproveBody | None, Body()] = None,
) -> dict[str, Any]:
    """End the pause the rollout waits at (with `full`, skip every remaining step and promote)."""
    deployment_id = _authorized(request, caller, Action.APPROVE, ref)
    body = body or schemas.ApproveBody()
    message = (
        _rollouts(request)
        .engine()
        .approve(
            deployment_id,
            full=body.full,
            actor=caller.audit_name(),
            principal=caller,
            override_freeze=body.override_freeze,
        )
    )
    return _outcome(request, deployment_id, message, _hand_over(request, deployment_id, "approve"))


@router.post("/deployments/{ref}/pause", response_model=schemas.ControlOutcome)
def pause(request: Request, caller: Caller, ref: DeploymentRef) -> dict[str, Any]:
    """Pause the rollout after its current step."""
    deployment_id = _authorized(request, caller, Action.PAUSE, ref)
    engine = _rollouts(request).engine()
    message = engine.pause(deployment_id, actor=caller.audit_name())
    holder = engine.driver(deployment_id)
    return _outcome(request, deployment_id, message, holder.owner if holder is not None else None)


@router.post("/deployments/{ref}/resume", response_model=schemas.ControlOutcome)
def resume(request: Request, caller: Caller, ref: DeploymentRef) -> dict[str, Any]:
    """Lift a manual pause, or take over a rollout whose driver is gone, and continue it."""
    deployment_id = _authorized(request, caller, Action.RESUME, ref)
    message = _rollouts(request).engine().resume(deployment_id, actor=caller.audit_name())
    return _outcome(request, deployment_id, message, _hand_over(request, deployment_id, "resume"))


@router.post("/deployments/{ref}/abort", status_code=202, response_model=schemas.ControlOutcome)
def abort(request: Request, caller: Caller, ref: DeploymentRef) -> dict[str, Any]:
    """Record the abort: the rollout's driver (or a job, when none holds it) rolls every touched cluster
    back; the deployment is Aborted once they all are."""
    from orchestrator.rollout import control

    deployment_id = _authorized(request, caller, Action.ABORT, ref)
    with _sessions(request).begin() as session:
        deployment = repo.get_deployment(session, deployment_id)
        message = control.request_abort(
            session, deployment, control.ControlRequest(Event.ABORT, caller.audit_name())
        )
    return _outcome(request, deployment_id, message, _hand_over(request, deployment_id, "abort"))


@router.post("/deployments/{ref}/retry", status_code=202, response_model=schemas.Deployment)
def retry(
    request: Request,
    response: Response,
    caller: Caller,
    ref: DeploymentRef,
    body: Annotated[schemas.RetryBody | None, Body()] = None,
) -> dict[str, Any]:
    """Roll out the release of a finished deployment again, as a new deployment (its frozen plan)."""
    deployment_id = _authorized(request, caller, Action.RETRY, ref)
    rollouts = _rollouts(request)
    engine = rollouts.engine()
    new_id = engine.retry(
        deployment_id,
        actor=caller.audit_name(),
        user_id=caller.user_id,
        principal=caller,
        override_freeze=(body or schemas.RetryBody()).override_freeze,
    )
    rollouts.release_lease(engine, new_id)
    request.app.state.jobs.enqueue_rollout(new_id, reason="retry")
    response.headers["Location"] = f"/api/v1/deployments/{new_id}"
    with _sessions(request)() as session:
        return _view(session, new_id)


def _created(
    request: Request, response: Response, deployment_id: uuid.UUID, lines: list[str]
) -> dict[str, Any]:
    request.app.state.jobs.enqueue_rollout(deployment_id, reason="create")
    response.headers["Location"] = f"/api/v1/deployments/{deployment_id}"
    with _sessions(request)() as session:
        return {"lines": lines, "deployment": _view(session, deployment_id)}


@router.post("/services/{service}/promote", status_code=202, response_model=schemas.Created)
def promote(
    request: Request,
    response: Response,
    caller: Caller,
    service: Annotated[str, Path(min_length=1, max_length=63)],
    body: schemas.PromoteBody,
) -> dict[str, Any]:
    """Roll out to `to` the release verified in the environment before it (or `from`), unchanged: what
    `orchestrator promote` records, queued."""
    from orchestrator.runtime import promote as promote_release

    rollouts = _rollouts(request)
    engine = rollouts.engine()
    deployment_id, lines = promote_release(
        rollouts.project(),
        engine,
        caller,
        service=service,
        target=body.to,
        source=body.from_,
        release_ref=body.release,
        override_freeze=body.override_freeze,
        leased=False,
    )
    return _created(request, response, deployment_id, lines)


@router.post("/services/{service}/rollback", status_code=202, response_model=schemas.Created)
def rollback(
    request: Request,
    response: Response,
    caller: Caller,
    service: Annotated[str, Path(min_length=1, max_length=63)],
    body: schemas.RollbackBody,
) -> dict[str, Any]:
    """Put the environment back on an earlier good release (a revert commit): what `orchestrator
    rollback` records, queued."""
    from orchestrator.runtime import rollback as roll_back

    rollouts = _rollouts(request)
    engine = rollouts.engine()
    deployment_id, lines = roll_back(
        rollouts.project(),
        engine,
        caller,
        service=service,
        environment=body.environment,
        release_ref=body.to,
        step_by_step=body.strategy == "canary",
        override_freeze=body.override_freeze,
        leased=False,
    )
    return _created(request, response, deployment_id, lines)
