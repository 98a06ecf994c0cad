"""The server's frame over real HTTP: alive, ready when its database is, errors as problem details."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from orchestrator.server.app import create_app
from orchestrator.server.settings import ServerSettings
from tests.helpers import REPO
from tests.server_fixtures import serving


def settings(tmp_path: Path, url: str | None = None) -> ServerSettings:
    return ServerSettings(
        root=REPO, state_dir=tmp_path, database_url=url or f"sqlite:///{tmp_path}/db.sqlite"
    )


def test_alive_ready_and_an_unknown_path_is_a_problem(tmp_path: Path) -> None:
    with serving(create_app(settings(tmp_path))) as base:
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200 and ready.json()["database"] == "ok"
        missing = httpx.get(f"{base}/nowhere")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json() == {
            "type": "about:blank",
            "title": "Not Found",
            "status": 404,
            "detail": "Not Found",
        }
        document = httpx.get(f"{base}/api/v1/openapi.json").json()
        assert document["info"]["title"] == "AddToCloud Orchestrator"


def test_not_ready_while_the_database_is_unreachable(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path))
    # The same application, its database gone away: a Postgres nobody listens for (connected lazily).
    app.state.sessions = sessionmaker(create_engine("postgresql+psycopg://postgres@127.0.0.1:1/gone"))
    with serving(app) as base:
        ready = httpx.get(f"{base}/readyz", timeout=30)
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "database": "OperationalError"}
