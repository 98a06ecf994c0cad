"""The REST API (`/api/v1`): rollouts and identity, behind bearer tokens; `/metrics` beside it."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST

from orchestrator.config import Project
from orchestrator.server.api import builds, deployments, identity, schemas
from orchestrator.server.metrics import CountRequests, Metrics
from orchestrator.server.rollouts import ServerRollouts

PREFIX = "/api/v1"
# Every route may answer these as problem details; the document says so, and schemathesis holds us to it.
PROBLEMS: dict[int | str, dict[str, object]] = {
    status: {"model": schemas.Problem, "content": {"application/problem+json": {}}, "description": title}
    for status, title in (
        (400, "the body is not JSON"),
        (401, "no token, or one that is unknown, expired or revoked"),
        (403, "the caller's role or the environment's lists do not allow it"),
        (404, "nothing by that name or id"),
        (409, "refused in the state things are in"),
        (422, "the request is not valid"),
    )
}


def install(app: FastAPI) -> None:
    """Add the API's routers, `/metrics`, and what they work with (`app.state`): the engines of requests and
    the metrics' registry. The jobs that drive what the API records are `app.state.jobs` (`wiring.py`)."""
    state = app.state
    # The jobs are read at each scrape, not now: whatever `app.state.jobs` is then is what is counted.
    state.metrics = Metrics(
        state.sessions,
        queue_depth=lambda: state.jobs.depth(),
        environments=Project(state.settings.root).environment_names,
    )
    state.rollouts = ServerRollouts(state.settings, state.sessions)
    app.add_middleware(CountRequests, metrics=state.metrics)
    router = APIRouter(prefix=PREFIX, responses=PROBLEMS)
    router.include_router(deployments.router)
    router.include_router(identity.router)
    router.include_router(builds.router)
    app.include_router(router)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
