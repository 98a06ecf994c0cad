"""`/api/v1` for rollouts: deployments (list, get with steps, events and measurements), deploy, the controls
(approve, pause, resume, abort, retry), status, history and releases.

Every route needs a token (reads too). A changing route checks `rules.require` in the deployment's
environment before anything is rendered or recorded, then acts through the engine and hands the driving to
the jobs (`server/controls.py`, which the dashboard's buttons call too): a request returns once the
deployment is recorded (202), never after the rollout.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from sqlalchemy.orm import Session

from orchestrator.identity.rules import Action, require
from orchestrator.server.api import schemas
from orchestrator.server.api.auth import Caller
from orchestrator.server.controls import Controls, Outcome
from orchestrator.server.details import deployment_detail
from orchestrator.server.rollouts import ServerRollouts
from orchestrator.store import repository as repo
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


def _view(session: Session, deployment_id: uuid.UUID) -> dict[str, Any]:
    return deployment_view(repo.get_deployment(session, deployment_id))


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
        return deployment_detail(session, ref)


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
    """Render SERVICE for ENVIRONMENT from the server's checkout (at `commit`, else its HEAD), record the
    release and the deployment, and queue its rollout with the service's strategy. When the environment
    requires an approval the deployment is recorded AwaitingApproval, nothing touched: `approve` starts
    it."""
    from orchestrator.runtime import deploy_request

    rollouts = _rollouts(request)
    project = rollouts.project()
    project.pipeline(body.service)  # an unknown service or environment is bad input, said first
    require(caller, Action.DEPLOY, project.environment(body.environment))
    commit = None
    if body.commit is not None:  # that commit's own pipelines and templates, as a push's deploy renders
        project, commit = rollouts.project_at(body.commit)
        project.pipeline(body.service)
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
        commit=commit,
        checkout=rollouts.settings.root,
    )
    deployment_id = rollouts.create(
        deploy,
        principal=caller,
        override_freeze=body.override_freeze,
        project=project if commit is not None else None,  # another commit's tree, under today's rules too
    )
    request.app.state.jobs.enqueue_rollout(deployment_id, reason="deploy")
    response.headers["Location"] = f"/api/v1/deployments/{deployment_id}"
    with _sessions(request)() as session:
        return _view(session, deployment_id)


def _outcome(request: Request, done: Outcome) -> dict[str, Any]:
    with _sessions(request)() as session:
        view = _view(session, done.deployment_id)
    return {"message": done.message, "driver": done.driver, "deployment": view}


def _controls(request: Request) -> Controls:
    return Controls(request.app.state)


@router.post("/deployments/{ref}/approve", response_model=schemas.ControlOutcome)
def approve(
    request: Request,
    caller: Caller,
    ref: DeploymentRef,
    body: Annotated[schemas.ApproveBody | None, Body()] = None,
) -> dict[str, Any]:
    """End the pause the rollout waits at (with `full`, skip every remaining step and promote)."""
    body = body or schemas.ApproveBody()
    done = _controls(request).approve(caller, ref, full=body.full, override_freeze=body.override_freeze)
    return _outcome(request, done)


@router.post("/deployments/{ref}/pause", response_model=schemas.ControlOutcome)
def pause(request: Request, caller: Caller, ref: DeploymentRef) -> dict[str, Any]:
    """Pause the rollout after its current step."""
    return _outcome(request, _controls(request).pause(caller, ref))


@router.post("/deployments/{ref}/resume", response_model=schemas.ControlOutcome)
def resume(request: Request, caller: Caller, ref: DeploymentRef) -> dict[str, Any]:
    """Lift a manual pause, or take over a rollout whose driver is gone, and continue it."""
    return _outcome(request, _controls(request).resume(caller, ref))


@router.post("/deployments/{ref}/abort", status_code=202, response_model=schemas.ControlOutcome)
def abort(request: Request, caller: Caller, ref: DeploymentRef) -> dict[str, Any]:
    """Record the abort: the rollout's driver (or a job, when none holds it) rolls every touched cluster
    back; the deployment is Aborted once they all are."""
    return _outcome(request, _controls(request).abort(caller, ref))


@router.post("/deployments/{ref}/retry", status_code=202, response_model=schemas.Deployment)
def retry(
    request: Request,
    response: Response,
    caller: Caller,
    ref: DeploymentRef,
    body: Annotated[schemas.RetryBody | None, Body()] = None,
) -> dict[str, Any]:
    """Roll out the release of a finished deployment again, as a new deployment (its frozen plan)."""
    override_freeze = (body or schemas.RetryBody()).override_freeze
    new_id = _controls(request).retry(caller, ref, override_freeze=override_freeze)
    response.headers["Location"] = f"/api/v1/deployments/{new_id}"
    with _sessions(request)() as session:
        return _view(session, new_id)


def _created(
    request: Request, response: Response, deployment_id: uuid.UUID, lines: list[str]
) -> dict[str, Any]:
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
    deployment_id, lines = _controls(request).promote(
        caller,
        service,
        to=body.to,
        source=body.from_,
        release=body.release,
        override_freeze=body.override_freeze,
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
    deployment_id, lines = _controls(request).rollback(
        caller,
        service,
        environment=body.environment,
        to=body.to,
        step_by_step=body.strategy == "canary",
        override_freeze=body.override_freeze,
    )
    return _created(request, response, deployment_id, lines)
