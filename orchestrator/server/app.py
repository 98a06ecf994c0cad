"""The server's ASGI application: health and readiness, problem details, and the routers of each part.

`create_app(settings)` is the one place the application is put together, for `orchestrator serve`, the tests
(which drive it over real HTTP with uvicorn) and the benchmarks. Parts add their routers here.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from orchestrator import __version__
from orchestrator.server import api, problems, webhooks
from orchestrator.server.settings import ServerSettings
from orchestrator.server.wiring import attach_jobs
from orchestrator.store import db


def create_app(settings: ServerSettings) -> FastAPI:
    app = FastAPI(
        title="AddToCloud Orchestrator",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.sessions = db.open_sessions(settings.database_url)
    problems.install(app)
    attach_jobs(app, settings)
    app.include_router(webhooks.router)
    api.install(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        """Ready: the state database answers."""
        try:
            with app.state.sessions() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:  # any failure to reach the database means not ready
            return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    return app
