"""The deployment page (`GET /deployments/{ref}`): the step timeline, each cluster's traffic over time,
each gate's canary against stable with its threshold, the judge's verdicts, the audit trail with its users,
the GitOps commit, and the controls the signed-in user may use — approve, approve fully, abort, retry,
roll back — each asking for confirmation and acting through `server/controls.py`, the code the REST API's
routes run.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.datastructures import FormData

from orchestrator.server.controls import Controls
from orchestrator.server.dashboard import charts
from orchestrator.server.dashboard.guard import CheckedForm, Viewer
from orchestrator.server.dashboard.health import phase_health
from orchestrator.server.dashboard.live import newest_event
from orchestrator.server.dashboard.pages import SECURITY_HEADERS, page_router, render
from orchestrator.server.details import deployment_detail
from orchestrator.store.models import Phase
from orchestrator.store.transitions import Event, allows

router = page_router()

DeploymentRef = Annotated[str, Path(min_length=4, max_length=36, pattern=r"^[0-9a-fA-F-]+$")]


def _detail(request: Request, ref: str) -> dict[str, Any]:
    with request.app.state.sessions() as session:
        return deployment_detail(session, ref)


def available(detail: dict[str, Any]) -> dict[str, bool]:
    """Which controls the deployment's phase allows (the transition table's answer; who may use them is
    the rules', asked in the template with `may`)."""
    phase = detail["phase"]
    current = next((s for s in detail["steps"] if s["state"] == "current"), None)
    waiting = current is not None and current["label"].startswith("pause")
    return {
        "approve": phase in (Phase.PAUSED.value, Phase.AWAITING_APPROVAL.value)
        or (phase == Phase.PROGRESSING.value and waiting),
        "approve_full": allows(phase, Event.APPROVE_FULL),
        "abort": allows(phase, Event.ABORT),
        "retry": allows(phase, Event.RETRY),
        "rollback": phase == Phase.SUCCEEDED.value,
    }


def _context(request: Request, ref: str) -> dict[str, Any]:
    detail = _detail(request, ref)
    return {
        "d": detail,
        "health": phase_health(detail["phase"]),
        "available": available(detail),
        "verdicts": charts.verdicts(detail),
        "gate_count": len(charts.gates(detail)),
    }


@router.get("/deployments/{ref}", response_class=HTMLResponse)
def deployment_page(request: Request, ref: DeploymentRef) -> HTMLResponse:
    with request.app.state.sessions() as session:
        from orchestrator.store import repository as repo

        deployment_id = repo.get_deployment(session, ref).id
    after = newest_event(request.app.state.sessions, deployment_id)  # before the data: nothing is missed
    return render(request, "deployment.html", after=after, **_context(request, str(deployment_id)))


PARTS = {"summary": "deployment_summary.html", "trail": "deployment_trail.html"}


@router.get("/deployments/{ref}/panel", response_class=HTMLResponse)
def deployment_panel(
    request: Request, ref: DeploymentRef, part: Annotated[Literal["summary", "trail"], Query()]
) -> HTMLResponse:
    """One live part of the page alone (the summary with the controls and clusters, or the steps,
    verdicts and events), fetched again when the live channel says the deployment changed."""
    return render(request, PARTS[part], **_context(request, ref))


@router.get("/deployments/{ref}/charts.json")
def deployment_charts(request: Request, ref: DeploymentRef) -> JSONResponse:
    """The charts' series (`charts.chart_data`), for static/dashboard.js to draw with uPlot."""
    return JSONResponse(charts.chart_data(_detail(request, ref)), headers=SECURITY_HEADERS)


def _back_to(deployment_id: uuid.UUID | str) -> RedirectResponse:
    return RedirectResponse(f"/deployments/{deployment_id}", status_code=303)


@router.post("/deployments/{ref}/approve")
def approve(request: Request, ref: DeploymentRef, viewer: Viewer, form: CheckedForm) -> RedirectResponse:
    full = _flag(form, "full")
    done = Controls(request.app.state).approve(viewer.principal, ref, full=full)
    return _back_to(done.deployment_id)


@router.post("/deployments/{ref}/abort")
def abort(request: Request, ref: DeploymentRef, viewer: Viewer, form: CheckedForm) -> RedirectResponse:  # noqa: ARG001
    done = Controls(request.app.state).abort(viewer.principal, ref)
    return _back_to(done.deployment_id)


@router.post("/deployments/{ref}/retry")
def retry(request: Request, ref: DeploymentRef, viewer: Viewer, form: CheckedForm) -> RedirectResponse:  # noqa: ARG001
    return _back_to(Controls(request.app.state).retry(viewer.principal, ref))


@router.post("/deployments/{ref}/rollback")
def rollback(request: Request, ref: DeploymentRef, viewer: Viewer, form: CheckedForm) -> RedirectResponse:  # noqa: ARG001
    """Roll the deployment's environment back to the release before (`orchestrator rollback`)."""
    detail = _detail(request, ref)
    new_id, _ = Controls(request.app.state).rollback(
        viewer.principal, detail["service"], environment=detail["environment"]
    )
    return _back_to(new_id)


def _flag(form: FormData, name: str) -> bool:
    return form.get(name) in ("1", "true", "on")
