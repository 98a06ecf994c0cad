"""The server's ASGI application: health and readiness, problem details, and the routers of each part.

`create_app(settings)` is the one place the application is put together, for `orchestrator serve`, the tests
(which drive it over real HTTP with uvicorn) and the benchmarks. Parts add their routers here.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from orchestrator import __version__
from orchestrator.server import api, dashboard, problems, webhooks
from orchestrator.server.deliveries import DeliveryRecorder
from orchestrator.server.login_limit import LoginLimiter, configured_limit
from orchestrator.server.settings import ServerSettings
from orchestrator.server.webhook_path import WebhookFastPath
from orchestrator.server.wiring import attach_jobs
from orchestrator.store import db


def create_app(settings: ServerSettings) -> FastAPI:
    app = FastAPI(
        title="AddToCloud Orchestrator",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry hooks, off: the server's metrics are Prometheus (/metrics), and
        # checking for a configured provider on every request was 2 % of a webhook delivery's CPU.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.login_limiter = LoginLimiter(configured_limit())
    app.state.sessions = db.open_sessions(settings.database_url)
    problems.install(app)
    attach_jobs(app, settings)
    app.state.deliveries = DeliveryRecorder(app.state.sessions, lambda: app.state.jobs)
    # Before the jobs close: what is waiting to be recorded is written (and its jobs handed over) first.
    app.router.on_shutdown.insert(0, app.state.deliveries.close)
    app.include_router(webhooks.router)
    # Added before the API's request counter, so the counter (outside it) counts and times every delivery.
    app.add_middleware(WebhookFastPath, router=webhooks.router)
    api.install(app)
    dashboard.install(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        """Ready: the state database answers and the jobs can be queued (on Postgres, the queue's table
        answers; on SQLite, the server's rollout threads run). Each part says `ok` or why not."""
        checks = {"database": _database_check(app), "queue": _check(app.state.jobs.check_ready)}
        ready = all(answer == "ok" for answer in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", **checks}, status_code=200 if ready else 503
        )

    return app


def _database_check(app: FastAPI) -> str:
    def select_one() -> None:
        with app.state.sessions() as session:
            session.execute(text("SELECT 1"))

    return _check(select_one)


def _check(probe: Callable[[], None]) -> str:
    """`ok`, or the failure's type (never its message: it may carry a database URL with a password)."""
    try:
        probe()
    except Exception as exc:  # any failure to reach the part means not ready
        return type(exc).__name__
    return "ok"
