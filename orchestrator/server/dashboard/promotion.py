"""The promotion view (`GET /promotion`), Kargo's stages: each service's promotion path with, in each
environment, the release it runs (the last Succeeded deployment's commit, digest and age), its newest
deployment's phase, what waits for an approval there, and a promote button where the release of the stage
before it can go on.

Promoting (`POST /promotion/{service}/promote`) calls `Controls.promote` (`server/controls.py`), as `POST
/api/v1/services/{service}/promote` does: `runtime.promote` — what `orchestrator promote` calls, with its
refusals and `rules.require` — with `leased=False`, then the rollout queued on the server's jobs. Nothing
here decides what may be promoted: the button is shown when the rules allow it and the stage before holds a
Succeeded release the target does not run, and the promotion code refuses anything else with its own
message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from orchestrator.server.dashboard.guard import CheckedForm, Viewer
from orchestrator.server.dashboard.health import phase_health
from orchestrator.server.dashboard.live import newest_event
from orchestrator.server.dashboard.pages import page_router, render
from orchestrator.store import repository as repo
from orchestrator.store.models import Phase
from orchestrator.store.views import deployment_view

router = page_router()

Name = Annotated[str, Path(min_length=1, max_length=63, pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")]
WAITING = (Phase.AWAITING_APPROVAL.value, Phase.AWAITING_MERGE.value, Phase.PAUSED.value)
# A stage holding one of these is busy: one rollout at a time per service and environment.
BUSY = (Phase.PENDING.value, Phase.PROGRESSING.value, *WAITING)


@dataclass
class Stage:
    environment: str
    previous: str | None  # the stage a release is promoted from (None: the first of its path)
    latest: dict[str, Any] | None  # the newest deployment here, whatever its phase
    running: dict[str, Any] | None  # the newest Succeeded deployment: the release this stage runs
    health: str = ""
    promotable: bool = False  # the stage before vouches for a release this one does not run

    @property
    def waiting(self) -> bool:
        return self.latest is not None and self.latest["phase"] in WAITING


@dataclass
class ServicePaths:
    service: str
    paths: list[list[Stage]] = field(default_factory=list)


def _view(deployment: Any) -> dict[str, Any] | None:
    return deployment_view(deployment, clusters=False) if deployment is not None else None


def service_paths(request: Request) -> list[ServicePaths]:
    """Every service's paths, stage by stage, from the store."""
    project = request.app.state.rollouts.project()
    found: list[ServicePaths] = []
    with request.app.state.sessions() as session:
        for name in project.service_names:
            pipeline = project.pipeline(name)
            entry = ServicePaths(name)
            for path in pipeline.promotion_paths:
                stages: list[Stage] = []
                for position, environment in enumerate(path):
                    latest = repo.latest_deployment(session, name, environment)
                    running = repo.latest_deployment(session, name, environment, phases={Phase.SUCCEEDED})
                    stage = Stage(
                        environment,
                        path[position - 1] if position else None,
                        _view(latest),
                        _view(running),
                        health=phase_health(latest.phase) if latest is not None else "",
                    )
                    if stages:
                        before = stages[-1]
                        stage.promotable = (
                            before.latest is not None
                            and before.latest["phase"] == Phase.SUCCEEDED.value
                            and (stage.latest is None or stage.latest["phase"] not in BUSY)
                            and (running is None or str(running.release_id) != before.latest["release"]["id"])
                        )
                    stages.append(stage)
                entry.paths.append(stages)
            found.append(entry)
    return found


@router.get("/promotion", response_class=HTMLResponse)
def promotion_view(
    request: Request,
    promoted: Annotated[str | None, Query(min_length=4, max_length=36, pattern=r"^[0-9a-fA-F-]+$")] = None,
) -> HTMLResponse:
    after = newest_event(request.app.state.sessions)  # read first: a change after it is announced
    notice = None
    if promoted is not None:
        with request.app.state.sessions() as session:
            notice = deployment_view(repo.get_deployment(session, promoted), clusters=False)
    return render(request, "promotion.html", services=service_paths(request), after=after, notice=notice)


@router.get("/promotion/stages", response_class=HTMLResponse)
def promotion_stages(request: Request) -> HTMLResponse:
    """The stages alone: what the page fetches again when the live channel says something changed."""
    return render(request, "promotion_stages.html", services=service_paths(request))


@router.post("/promotion/{service}/promote")
def promote(
    request: Request,
    viewer: Viewer,
    form: CheckedForm,  # noqa: ARG001  (checked for CSRF)
    service: Name,
    to: Annotated[str, Form(min_length=1, max_length=63)],
) -> Response:
    """Promote the release the stage before `to` vouches for: the CLI's and the REST API's promotion
    (`server/controls.py`, which the REST route calls too)."""
    from orchestrator.server.controls import Controls

    deployment_id, _ = Controls(request.app.state).promote(viewer.principal, service, to=to)
    return RedirectResponse(f"/promotion?promoted={deployment_id}", status_code=303)
