"""The embedded default (SQLite): `serve` runs the rollout jobs itself, and a server stopped mid-rollout
takes the rollout up again when it starts."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from orchestrator.server.app import create_app
from orchestrator.server.settings import ServerSettings
from orchestrator.server.webhook_settings import WebhookSettings
from orchestrator.store import repository as repo
from orchestrator.store.models import Deployment, Phase, RequestStatus, RolloutRequest
from tests.helpers import run_cli
from tests.integration.rollout_fixtures import CLUSTERS
from tests.server_fixtures import serving
from tests.webhook_helpers import REPOSITORY, SECRET, commit_change, deliver, git_estate, push_payload

SLOW = """strategy:
  canary:
    steps:
      - setWeight: 10
      - pause: {duration: 1s}
      - setWeight: 50
      - pause: {duration: 1s}
"""


def wait(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_serve_on_sqlite_runs_the_rollouts_and_resumes_them_after_a_restart(
    tmp_path: Path, running_sim: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in running_sim.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ORCHESTRATOR_LEASE_SECONDS", "5")
    monkeypatch.setenv("ORCHESTRATOR_HEARTBEAT_SECONDS", "0.5")
    root = git_estate(tmp_path / "estate", strategy=SLOW)
    settings = ServerSettings(
        root=root,
        state_dir=Path(running_sim["ORCHESTRATOR_STATE_DIR"]),
        database_url=running_sim["ORCHESTRATOR_DATABASE_URL"],
        webhooks=WebhookSettings(github_secret=SECRET, github_repository=REPOSITORY),
    )
    app = create_app(settings)
    sessions = app.state.sessions

    def latest() -> Deployment | None:
        with sessions() as session:
            return repo.latest_deployment(session, "api", "local")

    def request_status(request_id: int) -> str:
        with sessions() as session:
            return session.get(RolloutRequest, request_id).status  # type: ignore[union-attr]

    with serving(app) as base:
        first = commit_change(root, "services/api/VERSION", "1\n")
        answer = deliver(base, push_payload(first, paths=["services/api/VERSION"]))
        assert answer.status_code == 202, answer.text
        request_id = answer.json()["requests"][0]["id"]
        wait(lambda: request_status(request_id) == RequestStatus.DEPLOYED, 120, "the first release")
        assert latest().phase == Phase.SUCCEEDED.value  # type: ignore[union-attr]

        for cluster in CLUSTERS:
            assert run_cli("sim", "faults", cluster, "--latency-ms", "100", env=running_sim).returncode == 0
        pipeline = root / "pipelines" / "api.yaml"
        pipeline.write_text(pipeline.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
        second = commit_change(root, "services/api/VERSION", "2\n")
        answer = deliver(base, push_payload(second, paths=["services/api/VERSION"]))
        request_id = answer.json()["requests"][0]["id"]
        wait(
            lambda: (d := latest()) is not None and d.release.git_commit == second and d.current_step >= 1,
            120,
            "the canary to start",
        )
    # The server stopped mid-canary: the rollout was handed back at a step boundary, not finished.
    stopped = latest()
    assert stopped is not None and stopped.phase == Phase.PROGRESSING.value and stopped.lease_owner is None
    assert request_status(request_id) == RequestStatus.DEPLOYING

    restarted = create_app(settings)
    with serving(restarted):
        wait(lambda: request_status(request_id) == RequestStatus.DEPLOYED, 120, "the resumed rollout")
    with sessions() as session:
        deployment = repo.get_deployment(session, stopped.id)
        assert deployment.phase == Phase.SUCCEEDED.value, deployment.message
        completed = [e.step for e in repo.events_for(session, deployment.id) if e.type == "step_completed"]
        assert sorted(completed) == list(range(deployment.current_step))  # each step once
        assert session.scalar(select(Deployment.actor).where(Deployment.id == deployment.id)) == "github"


def test_a_push_to_an_environment_whose_deployers_leave_out_github_deploys_nothing(tmp_path: Path) -> None:
    """The webhook's source acts as a deployer named `github`: an environment listing only admins refuses
    it, the request is settled failed with the rule's reason, and nothing is recorded or touched."""
    root = git_estate(tmp_path / "estate")
    local = root / "environments" / "local.yaml"
    local.write_text(local.read_text() + "deployers: [admin]\n")
    settings = ServerSettings(
        root=root,
        state_dir=tmp_path / "state",
        database_url=f"sqlite:///{tmp_path}/db.sqlite",
        webhooks=WebhookSettings(github_secret=SECRET, github_repository=REPOSITORY),
    )
    app = create_app(settings)
    sessions = app.state.sessions
    with serving(app) as base:
        change = commit_change(root, "services/api/VERSION", "1\n")
        answer = deliver(base, push_payload(change, paths=["services/api/VERSION"]))
        assert answer.status_code == 202, answer.text
        request_id = answer.json()["requests"][0]["id"]

        def settled() -> RolloutRequest | None:
            with sessions() as session:
                found = session.get(RolloutRequest, request_id)
                return found if found is not None and found.status == RequestStatus.FAILED else None

        wait(lambda: settled() is not None, 60, "the request to be refused")
    request = settled()
    assert request is not None
    assert request.reason == "github (deployer) may not deploy in local; allowed (local's deployers): admin"
    with sessions() as session:
        assert repo.latest_deployment(session, "api", "local") is None
