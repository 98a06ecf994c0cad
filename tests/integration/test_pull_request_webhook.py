"""The `pull_request` webhook over real HTTP, on SQLite and on Postgres: it moves only the deployment
AwaitingMerge on that very pull request (repository and number), through the state machine, with its
rollout job queued in the same transaction; every other event is recorded as ignored with the reason, a
redelivery is a duplicate, and an unsigned or forged one is 401 with nothing recorded. And `abort` of a
deployment AwaitingMerge closes its pull request (real github3.py against the HTTPS fake)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import Project
from orchestrator.rollout.control import ControlState, PullRequestState
from orchestrator.runtime import rollout_engine
from orchestrator.server.app import create_app
from orchestrator.server.settings import ServerSettings
from orchestrator.server.signatures import sign
from orchestrator.server.webhook_settings import WebhookSettings
from orchestrator.store import db
from orchestrator.store import repository as repo
from orchestrator.store.models import Phase, WebhookDelivery
from orchestrator.store.transitions import Event
from tests.fakes.github import FakeGitHub
from tests.helpers import copy_estate
from tests.server_fixtures import serving
from tests.webhook_helpers import SECRET, deliver

TOKEN_ENV = "FAKE_GITHUB_TOKEN"
MERGE = "ab" * 20


class RecordingJobs:
    """The jobs interface, keeping the rollouts queued with a committed transaction (not driving them)."""

    def __init__(self) -> None:
        self.rollouts: list[tuple[uuid.UUID, str]] = []

    def enqueue_rollout(self, deployment_id: uuid.UUID, *, reason: str) -> None:
        self.rollouts.append((deployment_id, reason))

    def enqueue_rollout_in(self, session: Session, deployment_id: uuid.UUID, *, reason: str) -> None:
        from sqlalchemy import event

        event.listen(session, "after_commit", lambda _s: self.enqueue_rollout(deployment_id, reason=reason))

    def enqueue_requests(self, session: Session, request_ids: Sequence[int]) -> None:
        raise AssertionError("a pull_request event queues no rollout request")

    def close(self) -> None:
        return None


@pytest.fixture
def served(
    tmp_path: Path, each_backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, sessionmaker[Session], RecordingJobs]]:
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path / "state"))
    db.upgrade(each_backend_url)
    settings = ServerSettings(
        root=copy_estate(tmp_path / "estate"),
        state_dir=tmp_path / "state",
        database_url=each_backend_url,
        webhooks=WebhookSettings(github_secret=SECRET, github_repository="addtocloud/platform"),
    )
    app = create_app(settings)
    app.state.jobs.close()
    jobs = app.state.jobs = RecordingJobs()
    with serving(app) as base:
        yield base, app.state.sessions, jobs


def waiting_deployment(
    sessions: sessionmaker[Session],
    number: int,
    *,
    environment: str = "local",
    repository: str = "acme/gitops",
) -> uuid.UUID:
    """A deployment moved through the table to AwaitingMerge on pull request `number`, as the engine does."""
    with sessions.begin() as session:
        release = repo.get_or_create_release(
            session,
            service="api",
            git_commit="c" * 40,
            image_repository="registry.addtocloud.local/addtocloud/api",
            image_tag="v1",
            manifest_hash="h" * 16,
        )
        deployment = repo.create_deployment(
            session,
            release=release,
            environment=environment,
            strategy="rolling",
            clusters=[repo.ClusterPlacement("aws", "aws", "us-west-2")],
            actor="dev@addtocloud.tech",
        )
        repo.set_phase(session, deployment, Phase.PROGRESSING, event=Event.START)
        control = ControlState(
            pull_request=PullRequestState(
                repository=repository,
                number=number,
                url=f"https://github.example/{repository}/pull/{number}",
                head=f"orchestrator/{environment}/api-{deployment.id}",
                base="main",
                head_sha="d" * 40,
            )
        )
        deployment.control = control.to_record()
        repo.set_phase(session, deployment, Phase.AWAITING_MERGE, event=Event.AWAIT_MERGE, message="waiting")
        return deployment.id


def event(
    number: int, *, merged: bool, action: str = "closed", repository: str = "acme/gitops"
) -> dict[str, Any]:
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "merged": merged,
            "merge_commit_sha": MERGE if merged else None,
            "merged_by": {"login": "octo"} if merged else None,
            "base": {"ref": "main"},
        },
        "repository": {"full_name": repository},
        "sender": {"login": "octo"},
    }


def phase(sessions: sessionmaker[Session], deployment_id: uuid.UUID) -> str:
    with sessions() as session:
        return str(repo.get_deployment(session, deployment_id).phase)


def test_a_merge_moves_only_its_deployment_once_and_queues_its_rollout(served: Any) -> None:
    base, sessions, jobs = served
    mine = waiting_deployment(sessions, 7)
    other = waiting_deployment(sessions, 8, environment="local-prod")

    body = json.dumps(event(7, merged=True)).encode()
    for signature in ("", sign(b"forged", body), "sha256=" + "0" * 64):
        assert deliver(base, body, event="pull_request", signature=signature).status_code == 401
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    assert phase(sessions, mine) == "AwaitingMerge" and jobs.rollouts == []

    # Not this pull request: another repository, another number, an action that is not closed.
    for ignored, why in (
        (event(7, merged=True, repository="acme/other"), "no deployment waits on pull request acme/other#7"),
        (event(9, merged=True), "no deployment waits on pull request acme/gitops#9"),
        (event(7, merged=False, action="opened"), "only closed (merged or not) moves a deployment"),
    ):
        answer = deliver(base, ignored, event="pull_request")
        assert answer.status_code == 202 and answer.json()["outcome"] == "ignored", answer.text
        assert why in answer.json()["reason"]
    assert jobs.rollouts == []

    answer = deliver(base, body, event="pull_request", delivery="m-1")
    assert answer.status_code == 202 and answer.json()["outcome"] == "queued", answer.text
    assert [d for d, _ in jobs.rollouts] == [mine]
    with sessions() as session:
        deployment = repo.get_deployment(session, mine)
        assert deployment.phase == "Progressing" and "merged by octo" in (deployment.message or "")
        pull = ControlState.of(deployment.control).pull_request
        assert pull is not None and (pull.merge_commit, pull.merged_by) == (MERGE, "octo")
        kinds = [e.type for e in repo.events_for(session, mine)]
    assert kinds[-2:] == ["phase", "pull_request_merged"]
    assert phase(sessions, other) == "AwaitingMerge"

    duplicate = deliver(base, body, event="pull_request", delivery="m-1")
    assert duplicate.status_code == 200 and duplicate.json()["outcome"] == "duplicate"
    replay = deliver(base, body, event="pull_request", delivery="m-2")
    assert replay.json()["outcome"] == "ignored" and len(jobs.rollouts) == 1

    closed = deliver(base, event(8, merged=False), event="pull_request")
    assert closed.json()["outcome"] == "cancelled", closed.text
    with sessions() as session:
        cancelled = repo.get_deployment(session, other)
        assert (cancelled.phase, cancelled.reason) == ("Aborted", "PullRequestClosed")
        assert cancelled.finished_at is not None
    assert len(jobs.rollouts) == 1


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_abort_of_a_deployment_awaiting_its_merge_closes_the_pull_request(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = tmp_path / "gitops.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    work = tmp_path / "work"
    git("clone", "--quiet", str(remote), str(work))
    (work / "README.md").write_text("x\n")
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "first", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", "HEAD:refs/heads/proposal", cwd=work)
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path / "state"))
    db.upgrade(sqlite_url)
    with FakeGitHub(repo="gitops", git_dir=remote) as github:
        monkeypatch.setenv(TOKEN_ENV, github.token)
        root = copy_estate(tmp_path / "estate")
        local = root / "environments" / "local.yaml"
        local.write_text(
            local.read_text()
            + f"gitops:\n  repository: {remote}\n  mode: pull-request\n  github:\n"
            + f"    repository: addtocloud/gitops\n    apiUrl: {github.api_url}\n"
            + f"    tokenEnv: {TOKEN_ENV}\n    caBundle: {github.ca_path}\n"
        )
        # The pull request the deployment waits on, as GitHub holds it once opened.
        github.pulls[1] = {
            "number": 1,
            "title": "api: promote",
            "body": "",
            "head": "proposal",
            "base": "main",
            "head_sha": git("--git-dir", str(remote), "rev-parse", "proposal"),
            "base_sha": git("--git-dir", str(remote), "rev-parse", "main"),
            "state": "open",
            "created_at": "2026-12-02T00:00:00Z",
        }
        engine = rollout_engine(Project(root), sqlite_url)
        deployment_id = waiting_deployment(engine.sessions, 1, repository="addtocloud/gitops")
        assert engine.abort(deployment_id, actor="dev@addtocloud.tech") == []
        assert github.pulls[1]["state"] == "closed"
        with engine.sessions() as session:
            deployment = repo.get_deployment(session, deployment_id)
            assert deployment.phase == "Aborted"
            kinds = [e.type for e in repo.events_for(session, deployment_id)]
        assert kinds[-1] == "pull_request_closed"
        patches = [r for r in github.server.requests if r.method == "PATCH"]
        assert [r.path for r in patches] == ["/repos/addtocloud/gitops/pulls/1"]
        assert patches[0].json()["state"] == "closed"
        assert patches[0].headers["user-agent"].startswith("github3.py/")
