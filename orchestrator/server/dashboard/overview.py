"""The overview (`GET /`): every service in every environment, each cell what `orchestrator status` says
of it — the running release (commit, digest, age), the newest deployment's phase, each cluster's traffic
split and drift — coloured for health, with filters, and kept current over the live channel.

The cells are `runtime.status`'s views (the function the command and `GET /api/v1/status` call), so the
page shows exactly what they show; this module only lays them out and decides their colour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from orchestrator.runtime import status as read_status
from orchestrator.server.dashboard.health import HEALTHS, cell_health
from orchestrator.server.dashboard.live import newest_event
from orchestrator.server.dashboard.pages import page_router, render

router = page_router()

Filter = Annotated[str, Query(max_length=253, pattern=r"^[a-z0-9.-]*$")]


@dataclass
class Grid:
    services: list[str]
    environments: list[str]
    cells: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def cell(self, service: str, environment: str) -> dict[str, Any] | None:
        return self.cells.get((service, environment))


def _grid(request: Request, service: str, environment: str, health: str) -> Grid:
    project = request.app.state.rollouts.project()
    services = [s for s in project.service_names if not service or s == service]
    environments = [e for e in project.environment_names if not environment or e == environment]
    views = read_status(project, request.app.state.sessions, service or None, environment or None)
    grid = Grid(services, environments)
    for view in views:
        view["health"] = cell_health(view)
        if not health or view["health"] == health:
            grid.cells[(view["service"], view["environment"])] = view
    if health:  # a filter on health shows only the rows and columns that hold a matching cell
        grid.services = [s for s in grid.services if any((s, e) in grid.cells for e in grid.environments)]
        grid.environments = [e for e in grid.environments if any((s, e) in grid.cells for s in grid.services)]
    return grid


def _filters(request: Request, service: str, environment: str, health: str) -> dict[str, Any]:
    project = request.app.state.rollouts.project()
    return {
        "filters": {"service": service, "environment": environment, "health": health},
        "service_names": project.service_names,
        "environment_names": project.environment_names,
        "healths": HEALTHS,
    }


@router.get("/", response_class=HTMLResponse)
def overview(
    request: Request, service: Filter = "", environment: Filter = "", health: Filter = ""
) -> HTMLResponse:
    after = newest_event(request.app.state.sessions)  # read first: a change after it is announced
    return render(
        request,
        "overview.html",
        grid=_grid(request, service, environment, health),
        after=after,
        query=request.url.query,
        **_filters(request, service, environment, health),
    )


@router.get("/overview/grid", response_class=HTMLResponse)
def overview_grid(
    request: Request, service: Filter = "", environment: Filter = "", health: Filter = ""
) -> HTMLResponse:
    """The grid alone: what the page fetches again when the live channel says something changed."""
    return render(request, "overview_grid.html", grid=_grid(request, service, environment, health))
