"""A served API on a database of each kind, with users of each role and tokens in each state."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from orchestrator.identity import tokens
from orchestrator.server.app import create_app
from orchestrator.server.settings import ServerSettings
from orchestrator.store import db
from orchestrator.store import identity as store
from orchestrator.store.models import utcnow
from tests.helpers import copy_estate
from tests.server_fixtures import serving


class RecordingJobs:
    """The jobs interface, keeping what was handed to it instead of driving (the routes' side only)."""

    def __init__(self) -> None:
        self.enqueued: list[tuple[uuid.UUID, str]] = []

    def enqueue_rollout(self, deployment_id: uuid.UUID, *, reason: str) -> None:
        self.enqueued.append((deployment_id, reason))

    def enqueue_requests(self, session: Session, request_ids: Sequence[int]) -> None:
        raise AssertionError(f"the API queues deployments, not webhook requests ({list(request_ids)})")

    def depth(self) -> dict[tuple[str, str], int]:
        return {("rollout", "queued"): len(self.enqueued)}  # kept, never run

    def check_ready(self) -> None:
        return None

    def close(self) -> None:
        return None


@dataclass
class Api:
    base: str
    app: FastAPI
    url: str  # the database
    root: Path
    tokens: dict[str, str] = field(default_factory=dict)  # name -> secret

    def client(self, who: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=f"{self.base}/api/v1", headers=headers, timeout=60)

    def call(self, who: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.client(who) as client:
            return client.request(method, path, **kwargs)


def add_user(url: str, email: str, role: str, *, expired: bool = False, revoked: bool = False) -> str:
    """A user with one token (expired or revoked on request); the token's secret."""
    new = tokens.generate()
    now = utcnow()
    with db.open_sessions(url).begin() as session:
        user = store.find_user(session, email) or store.create_user(session, email, role, password_hash="")
        token = store.add_token(
            session,
            user,
            name="test",
            token_hash=new.token_hash,
            prefix=new.prefix,
            expires_at=now - timedelta(minutes=1) if expired else now + timedelta(days=1),
            now=now - timedelta(hours=1),
        )
        if revoked:
            store.revoke_token(session, token, now=now)
    return new.secret


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is RFC 9457 problem details with this status; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"] == "about:blank"
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.fixture
def api(tmp_path: Path, each_backend_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path / "state"))
    db.upgrade(each_backend_url)
    root = copy_estate(tmp_path / "estate")
    app = create_app(ServerSettings(root=root, state_dir=tmp_path / "state", database_url=each_backend_url))
    app.state.jobs.close()
    app.state.jobs = RecordingJobs()
    served = Api("", app, each_backend_url, root)
    served.tokens = {
        "admin": add_user(each_backend_url, "admin@example.com", "admin"),
        "deployer": add_user(each_backend_url, "dev@example.com", "deployer"),
        "viewer": add_user(each_backend_url, "viewer@example.com", "viewer"),
        "expired": add_user(each_backend_url, "late@example.com", "deployer", expired=True),
        "revoked": add_user(each_backend_url, "gone@example.com", "deployer", revoked=True),
    }
    with serving(app) as base:
        served.base = base
        yield served
