"""History (`GET /history`): past deployments searched on the server by service, environment, user (the
audit name), outcome (phase) and dates, with DORA's four keys for the same service and environment.

The search is `repository.list_deployments` — the query `orchestrator history` and the REST API's history
read — with its filters; the figures are `runtime.stats` (what `orchestrator stats` and `GET
/api/v1/stats` answer) and their small charts `dora.trend`, the same computation over consecutive parts
of the window. Nothing is filtered or counted in the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from orchestrator.errors import ConfigError
from orchestrator.identity.tokens import parse_span
from orchestrator.runtime import stats as dora_figures
from orchestrator.server.dashboard.health import phase_health
from orchestrator.server.dashboard.pages import page_router, render
from orchestrator.store import dora
from orchestrator.store import repository as repo
from orchestrator.store.models import Phase, utcnow
from orchestrator.store.views import deployment_view

router = page_router()

SHOWN = 200  # deployments listed at most; the search narrows further
WINDOWS = ("7d", "30d", "90d")
TREND_BUCKETS = 10

NameFilter = Annotated[str, Query(max_length=253, pattern=r"^[a-z0-9.-]*$")]
OUTCOMES = tuple(p.value for p in Phase)


@dataclass(frozen=True)
class Search:
    service: str
    environment: str
    user: str
    outcome: str
    since: str  # YYYY-MM-DD, inclusive
    until: str  # YYYY-MM-DD, inclusive
    window: str

    def created_range(self) -> tuple[datetime | None, datetime | None]:
        """[the first day's start, the day after the last day's start), in UTC."""
        start = _day(self.since, "from")
        end = _day(self.until, "to")
        if start and end and end < start:
            raise ConfigError(
                f"the dates run backwards: from {self.since} is after to {self.until}", key="to"
            )
        return start, end + timedelta(days=1) if end else None


def _day(text: str, key: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
    except ValueError:
        raise ConfigError(f"{text!r} is not a date (YYYY-MM-DD)", key=key) from None


def _deployments(request: Request, search: Search) -> list[dict[str, Any]]:
    project = request.app.state.rollouts.project()
    if search.service:
        project.pipeline(search.service)  # a typo is said, not answered with an empty list
    if search.environment:
        project.environment(search.environment)
    created_from, created_before = search.created_range()
    with request.app.state.sessions() as session:
        found = repo.list_deployments(
            session,
            search.service or None,
            search.environment or None,
            limit=SHOWN,
            actor=search.user or None,
            phases=[search.outcome] if search.outcome else None,
            created_from=created_from,
            created_before=created_before,
        )
        views = [deployment_view(d, clusters=False) for d in found]
    for view in views:
        view["health"] = phase_health(view["phase"])
    return views


def _figures(request: Request, search: Search) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The window's four keys, and each one's trend as a chart's series (x: each part's end, in seconds)."""
    project = request.app.state.rollouts.project()
    sessions = request.app.state.sessions
    service, environment = search.service or None, search.environment or None
    figures = dora_figures(
        project, sessions, service=service, environment=environment, since=search.window, key="window"
    )
    span = parse_span(search.window)
    assert span is not None  # runtime.stats refused it otherwise
    until = utcnow()
    with sessions() as session:
        parts = dora.trend(
            session,
            since=until - span,
            until=until,
            buckets=TREND_BUCKETS,
            service=service,
            environment=environment,
        )
    x = [int(p.until.timestamp()) for p in parts]
    charts = [
        _chart("Deployments per day", "per day", x, [p.deployment_frequency.value for p in parts]),
        _chart("Lead time for changes", "hours", x, [p.lead_time.value for p in parts]),
        _chart("Change failure rate", "ratio", x, [p.change_failure_rate.value for p in parts]),
        _chart("Recovery time", "hours", x, [p.recovery_time.value for p in parts]),
    ]
    return figures, charts


def _chart(title: str, unit: str, x: list[int], y: list[float | None]) -> dict[str, Any]:
    values = [None if v is None else round(v, 4) for v in y]
    return {"title": title, "unit": unit, "series": [x, values], "empty": all(v is None for v in values)}


@router.get("/history", response_class=HTMLResponse)
def history(
    request: Request,
    service: NameFilter = "",
    environment: NameFilter = "",
    user: Annotated[str, Query(max_length=255)] = "",
    outcome: Annotated[str, Query(max_length=20, pattern=r"^[A-Za-z]*$")] = "",
    since: Annotated[str, Query(alias="from", max_length=10)] = "",
    until: Annotated[str, Query(alias="to", max_length=10)] = "",
    window: Annotated[str, Query(pattern=r"^(7d|30d|90d)$")] = "30d",
) -> HTMLResponse:
    if outcome and outcome not in OUTCOMES:
        raise ConfigError(f"outcome {outcome!r} is not a phase; one of {', '.join(OUTCOMES)}", key="outcome")
    search = Search(service, environment, user.strip(), outcome, since, until, window)
    deployments = _deployments(request, search)
    figures, charts = _figures(request, search)
    project = request.app.state.rollouts.project()
    return render(
        request,
        "history.html",
        search=search,
        deployments=deployments,
        shown_at_most=SHOWN,
        figures=figures,
        charts=charts,
        service_names=project.service_names,
        environment_names=project.environment_names,
        outcomes=OUTCOMES,
        windows=WINDOWS,
    )
