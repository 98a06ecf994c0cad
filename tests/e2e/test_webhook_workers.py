"""Webhook to rollout on Postgres: the server queues, `orchestrator worker` processes deploy on the emulator.

- a signed push → 202; a worker deploys to the first environment, recording actor `github` and the
  delivery id (`history` shows them); the same delivery again → no second deployment;
- two workers and ten pushes for one service and environment: one rollout at a time, every request
  deployed or superseded by a newer one, and the last release is what runs;
- a worker SIGKILLed mid-canary: another worker finishes the rollout, no step and no write applied twice;
- SIGTERM: the worker stops at a step boundary, gives the lease back, and another worker resumes at once.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from orchestrator.sim.client import SimControl, load_running_sim
from orchestrator.store import db, queue
from orchestrator.store import repository as repo
from orchestrator.store.models import TERMINAL_PHASES, Deployment, Phase, RequestStatus
from tests.e2e.test_kill_resume import applied_writes
from tests.e2e.webhook_estate import Estate, webhook_estate
from tests.helpers import run_cli
from tests.integration.rollout_fixtures import CLUSTERS
from tests.webhook_helpers import deliver, push_payload

pytestmark = pytest.mark.postgres

SLOW_CANARY = """strategy:
  canary:
    steps:
      - setWeight: 10
      - pause: {duration: 1s}
      - setWeight: 50
      - pause: {duration: 1s}
"""


@pytest.fixture
def estate(
    tmp_path: Path, running_sim: dict[str, str], make_postgres_database: Callable[[], str]
) -> Iterator[Estate]:
    with webhook_estate(tmp_path, running_sim, make_postgres_database()) as here:
        yield here


def test_a_signed_push_is_deployed_by_a_worker_once(estate: Estate) -> None:
    estate.worker()
    sha, answer = estate.push("1", delivery="delivery-one")
    assert answer["outcome"] == "queued"
    estate.wait(estate.settled(1), 120, "the rollout")
    [deployment] = estate.deployments()
    assert (deployment.phase, deployment.environment, deployment.actor) == ("Succeeded", "local", "github")
    assert deployment.release.git_commit == sha
    trigger = (deployment.config or {})["trigger"]
    assert (trigger["source"], trigger["event"], trigger["delivery"], trigger["commit"]) == (
        "github",
        "push",
        "delivery-one",
        sha,
    )
    history = run_cli("history", "api", "-o", "json", env=estate.env)
    assert history.returncode == 0, history.stderr
    [shown] = json.loads(history.stdout)
    assert shown["actor"] == "github" and shown["trigger"]["delivery"] == "delivery-one"
    table = run_cli("history", "api", env=estate.env)
    assert "github (push delivery-one)" in table.stdout, table.stdout

    again = deliver(estate.base, push_payload(sha, paths=["services/api/VERSION"]), delivery="delivery-one")
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    time.sleep(3)
    assert len(estate.deployments()) == 1 and len(estate.requests()) == 1


def test_two_workers_ten_pushes_one_at_a_time_and_the_last_wins(estate: Estate) -> None:
    estate.worker()
    estate.worker()
    shas = [estate.push(str(version))[0] for version in range(1, 11)]
    estate.wait(estate.settled(10), 240, "ten requests to settle")
    requests = estate.requests()
    assert Counter(r.status for r in requests)["failed"] == 0, [(r.id, r.reason) for r in requests]
    # None lost: each is deployed, or superseded by a newer one.
    for request in requests:
        if request.status == RequestStatus.SUPERSEDED.value:
            assert request.superseded_by is not None and request.superseded_by > request.id
        else:
            assert request.status == RequestStatus.DEPLOYED.value and request.deployment_id is not None
    deployments = estate.deployments()
    assert all(d.phase == Phase.SUCCEEDED.value for d in deployments), [
        (d.id, d.phase, d.message) for d in deployments
    ]
    # One at a time: each started after the one before it finished.
    for before, after in pairwise(deployments):
        assert before.finished_at is not None and after.started_at is not None
        assert after.started_at >= before.finished_at, (before.id, after.id)
    # The last release wins: the newest deployment is the last push's commit.
    assert deployments[-1].release.git_commit == shas[-1]
    assert requests[-1].status == RequestStatus.DEPLOYED.value
    assert len(deployments) < 10  # pushes that arrived while one rolled out were coalesced


def _wait_for_step(estate: Estate, step: int) -> Deployment:
    def reached() -> bool:
        deployments = [d for d in estate.deployments() if d.phase == Phase.PROGRESSING.value]
        return bool(deployments) and deployments[-1].current_step >= step

    estate.wait(reached, 120, f"a rollout at step {step}")
    return [d for d in estate.deployments() if d.phase == Phase.PROGRESSING.value][-1]


def _prepare_canary(estate: Estate) -> SimControl:
    """A first release (deployed directly), then slow clusters so that a canary's steps take a while."""
    estate.push("base")
    estate.wait(estate.settled(1), 120, "the first release")
    pipeline = estate.root / "pipelines" / "api.yaml"
    pipeline.write_text(pipeline.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
    for cluster in CLUSTERS:
        slow = run_cli("sim", "faults", cluster, "--latency-ms", "150", env=estate.env)
        assert slow.returncode == 0, slow.stderr
    info = load_running_sim(estate.env["ORCHESTRATOR_STATE_DIR"])
    assert info is not None
    control = SimControl.for_sim(info)
    for cluster in CLUSTERS:
        control.reset_requests(cluster)
    return control


def _steps_once(estate: Estate, deployment_id: object) -> None:
    with estate.sessions() as session:
        deployment = repo.get_deployment(session, deployment_id)  # type: ignore[arg-type]
        assert deployment.phase == Phase.SUCCEEDED.value, deployment.message
        events = repo.events_for(session, deployment.id)
    completed = Counter(e.step for e in events if e.type == "step_completed")
    assert sorted(completed) == list(range(deployment.current_step)) and set(completed.values()) == {1}
    started = Counter(e.step for e in events if e.type == "step_started")
    assert set(started.values()) <= {1}, started


def test_a_worker_killed_mid_canary_is_taken_over_and_nothing_is_applied_twice(estate: Estate) -> None:
    first = estate.worker()
    control = _prepare_canary(estate)
    estate.push("canary")
    killed = _wait_for_step(estate, 2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = time.monotonic()
    estate.worker()
    estate.wait(estate.settled(2), 180, "the taken-over rollout")
    assert time.monotonic() - killed_at < 60
    _steps_once(estate, killed.id)
    killed_writes = applied_writes(control)

    # The same change again without a kill: exactly the same writes.
    for cluster in CLUSTERS:
        control.reset_requests(cluster)
    pipeline = estate.root / "pipelines" / "api.yaml"
    pipeline.write_text(pipeline.read_text().replace("LOG_LEVEL: debug", "LOG_LEVEL: warn"))
    estate.push("reference")
    estate.wait(estate.settled(3), 180, "the reference rollout")
    assert killed_writes == applied_writes(control)
    control.close()


def test_sigterm_hands_the_rollout_back_to_another_worker(estate: Estate) -> None:
    first = estate.worker()
    _prepare_canary(estate).close()
    estate.push("handed-back")
    running = _wait_for_step(estate, 1)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 0, estate.logs()
    with estate.sessions() as session:
        left = repo.get_deployment(session, running.id)
        assert left.phase == Phase.PROGRESSING.value and left.lease_owner is None  # resumable at once
    estate.worker()
    estate.wait(estate.settled(2), 120, "the resumed rollout")
    _steps_once(estate, running.id)
    assert all(Phase(d.phase) in TERMINAL_PHASES for d in estate.deployments())


def test_worker_refuses_sqlite_and_an_uninstalled_queue(tmp_path: Path, make_postgres_database) -> None:
    sqlite = run_cli("worker", env={"ORCHESTRATOR_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite"})
    assert sqlite.returncode == 2 and "need a shared Postgres database" in sqlite.stderr, sqlite.stderr
    url = make_postgres_database()
    db.upgrade(url)  # the orchestrator's tables, but not the queue
    missing = run_cli("worker", env={"ORCHESTRATOR_DATABASE_URL": url})
    assert missing.returncode == 1 and "run `orchestrator db upgrade`" in missing.stderr, missing.stderr
    queue.install(url)
    queue.install(url)  # converging again is safe
    queue.require_installed(url)
