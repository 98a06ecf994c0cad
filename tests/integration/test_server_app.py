"""The server's frame over real HTTP: alive, ready when its database and its job queue are, errors as
problem details, and the queue's depth in /metrics."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from orchestrator.server.app import create_app
from orchestrator.server.jobs import QueueJobs
from orchestrator.server.settings import ServerSettings
from orchestrator.store import db, queue
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
        assert ready.status_code == 200
        assert ready.json() == {"status": "ok", "database": "ok", "queue": "ok"}
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
        # SQLite's jobs are the server's own threads: they still run, the database does not answer
        assert ready.json() == {"status": "unavailable", "database": "OperationalError", "queue": "ok"}


def test_not_ready_once_the_rollout_threads_stop(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path))
    with serving(app) as base:
        assert httpx.get(f"{base}/readyz").status_code == 200
        app.state.jobs.close()  # as at shutdown: no job would be taken now
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "database": "ok", "queue": "RuntimeError"}


def test_on_postgres_ready_only_with_the_queue_installed_and_its_depth_in_metrics(
    tmp_path: Path, make_postgres_database: object
) -> None:
    bare = make_postgres_database()  # type: ignore[operator]
    db.upgrade(bare)  # the tables, not the queue: `orchestrator db upgrade` was not run
    app = create_app(settings(tmp_path, bare))
    assert isinstance(app.state.jobs, QueueJobs)
    with serving(app) as base:
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "database": "ok", "queue": "QueueNotInstalledError"}
        metrics = httpx.get(f"{base}/metrics")  # the other series still go out, without a queue depth
        assert metrics.status_code == 200 and "orchestrator_deployments" in metrics.text
        assert "orchestrator_queue_jobs{" not in metrics.text

    installed = make_postgres_database()  # type: ignore[operator]
    db.upgrade(installed)
    queue.install(installed)
    app = create_app(settings(tmp_path, installed))
    with serving(app) as base:
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ok", "database": "ok", "queue": "ok"}
        depth = 'orchestrator_queue_jobs{entrypoint="rollout",status="queued"}'
        assert f"{depth} 0.0" in httpx.get(f"{base}/metrics").text
        for _ in range(3):  # three jobs nobody takes (no worker runs): queued, as pgqueuer counts them
            app.state.jobs.enqueue_rollout(uuid.uuid4(), reason="test")
        text = httpx.get(f"{base}/metrics").text
        assert f"{depth} 3.0" in text
        assert 'orchestrator_queue_jobs{entrypoint="rollout-request",status="queued"} 0.0' in text
        assert 'orchestrator_queue_jobs{entrypoint="rollout",status="picked"} 0.0' in text
