"""GitHub deployments through the real github3.py against a local HTTPS fake of GitHub's REST API: statuses
in order with log_url and environment_url, inactive for the deployment a success replaced, and a GitHub
that is down, distrusted or refuses the token never touching the rollout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import Project
from orchestrator.runtime import open_store
from orchestrator.store import db
from orchestrator.store import repository as repo
from orchestrator.store.models import Phase
from tests.fakes.github import FakeGitHub
from tests.integration.notification_fixtures import (
    deliveries,
    estate_with,
    fake_clock,
    notifier,
    pump,
    record_rollout,
)

TOKEN_ENV = "FAKE_GITHUB_TOKEN"


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        monkeypatch.setenv(TOKEN_ENV, fake.token)
        yield fake


@pytest.fixture
def sessions(each_backend_url: str) -> sessionmaker[Session]:
    """The store on SQLite, then on Postgres."""
    db.upgrade(each_backend_url)
    return open_store(each_backend_url)


def github_estate(tmp_path: Path, github: FakeGitHub, *, ca: bool = True) -> Project:
    # The machine's REQUESTS_CA_BUNDLE names the system CAs, which do not sign the fake's certificate: the
    # private CA must be given (and take effect) through caBundle.
    return estate_with(
        tmp_path / "estate",
        "github:\n"
        "  repository: addtocloud/platform\n"
        f"  apiUrl: {github.api_url}\n"
        f"  tokenEnv: {TOKEN_ENV}\n"
        + (f"  caBundle: {github.ca_path}\n" if ca else "")
        + "  environmentUrl: https://local.addtocloud.test\n",
    )


def page(deployment_id: object) -> str:
    return f"https://orchestrator.test/api/v1/deployments/{deployment_id}"


def test_a_deployment_sends_its_statuses_in_order_with_log_and_environment_urls(
    tmp_path: Path, sessions: sessionmaker[Session], github: FakeGitHub
) -> None:
    project = github_estate(tmp_path, github)
    deployment_id = record_rollout(sessions, Phase.SUCCEEDED, commit="a1" * 20)
    clock = fake_clock()
    pump(notifier(project, sessions, clock), clock, seconds=1)

    [(number, created)] = github.deployments.items()
    sent = created["request"]
    assert (sent["ref"], sent["environment"], sent["required_contexts"]) == ("a1" * 20, "local", [])
    assert sent["payload"]["orchestrator_deployment"] == str(deployment_id)
    statuses = github.statuses[number]
    assert [s["state"] for s in statuses] == ["queued", "in_progress", "success"]
    for status in statuses:
        assert status["log_url"] == page(deployment_id)
        assert status["environment_url"] == "https://local.addtocloud.test"
        assert status["environment"] == "local" and status["auto_inactive"] is False
    assert "succeeded" in statuses[-1]["description"]
    assert [(r["destination"], r["status"]) for r in deliveries(sessions, deployment_id)] == [
        ("github", "delivered"),
        ("github", "delivered"),
    ]
    # Every request carried the token github3.py was given; the statuses went through its session.
    assert all(r.headers.get("authorization") == f"token {github.token}" for r in github.server.requests)
    assert all(r.headers.get("user-agent", "").startswith("github3.py/") for r in github.server.requests)


def test_a_success_makes_the_deployment_it_replaced_inactive_and_a_rollback_replaces_nothing(
    tmp_path: Path, sessions: sessionmaker[Session], github: FakeGitHub
) -> None:
    project = github_estate(tmp_path, github)
    clock = fake_clock()
    tailer = notifier(project, sessions, clock)
    record_rollout(sessions, Phase.SUCCEEDED, commit="b1" * 20)
    pump(tailer, clock, seconds=1)
    record_rollout(sessions, Phase.SUCCEEDED, commit="b2" * 20)
    pump(tailer, clock, seconds=1)
    record_rollout(sessions, Phase.ROLLED_BACK, commit="b3" * 20, gate_value=0.6)
    pump(tailer, clock, seconds=1)

    first, second, third = sorted(github.deployments)
    assert github.states(first) == ["queued", "in_progress", "success", "inactive"]
    assert github.states(second) == ["queued", "in_progress", "success"]  # still what runs
    assert github.states(third) == ["queued", "in_progress", "failure"]
    failure = github.statuses[third][-1]
    assert "request-success-rate = 0.6" in failure["description"]
    inactive = github.statuses[first][-1]
    assert "replaced by" in inactive["description"]


def test_github_down_never_touches_the_rollout_and_the_statuses_catch_up_in_order(
    tmp_path: Path, sessions: sessionmaker[Session], github: FakeGitHub
) -> None:
    project = github_estate(tmp_path, github)
    github.unavailable = 5  # GitHub answers 503 to the next five requests
    deployment_id = record_rollout(sessions, Phase.SUCCEEDED, commit="c1" * 20)
    clock = fake_clock()
    tailer = notifier(project, sessions, clock)
    tailer.run_once()
    first = deliveries(sessions, deployment_id)
    assert [r["status"] for r in first] == ["pending", "pending"]
    creating = "github: creating a GitHub deployment in addtocloud/platform"
    assert first[0]["last_error"] == f"{creating}: GitHub answered 503 Service Unavailable"
    assert first[1]["attempts"] == 0  # the later status waits for the earlier one: never out of order
    pump(tailer, clock, seconds=120, step=2)
    [number] = github.deployments
    assert github.states(number) == ["queued", "in_progress", "success"]
    assert [r["status"] for r in deliveries(sessions, deployment_id)] == ["delivered", "delivered"]
    with sessions() as session:
        assert repo.get_deployment(session, deployment_id).phase == Phase.SUCCEEDED.value


def test_without_the_private_ca_the_fake_is_not_trusted(
    tmp_path: Path, sessions: sessionmaker[Session], github: FakeGitHub
) -> None:
    project = github_estate(tmp_path, github, ca=False)
    deployment_id = record_rollout(sessions, Phase.SUCCEEDED, commit="d1" * 20)
    clock = fake_clock()
    notifier(project, sessions, clock).run_once()
    row = deliveries(sessions, deployment_id)[0]
    assert row["status"] == "pending" and "SSLError" in row["last_error"]
    assert github.deployments == {}


def test_a_refused_token_is_recorded_and_never_shown(
    tmp_path: Path, sessions: sessionmaker[Session], github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = github_estate(tmp_path, github)
    monkeypatch.setenv(TOKEN_ENV, "ghp_wrongwrongwrong")
    deployment_id = record_rollout(sessions, Phase.SUCCEEDED, commit="e1" * 20)
    clock = fake_clock()
    notifier(project, sessions, clock).run_once()
    row = deliveries(sessions, deployment_id)[0]
    assert row["last_error"].endswith("GitHub answered 401 Bad credentials")
    assert "wrongwrong" not in row["last_error"]
