"""A rollout survives SIGKILL at every step boundary: resumed, nothing is done or recorded twice; one driver
at a time (a second one is refused while the first runs, and takes over once a killed driver's lease
expires)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from orchestrator.runtime import open_store
from orchestrator.sim.client import SimControl, load_running_sim
from orchestrator.store import leases
from orchestrator.store import repository as repo
from orchestrator.store.leases import LeaseHolder
from orchestrator.store.models import TERMINAL_PHASES, Phase
from tests.helpers import REPO, run_cli
from tests.integration.rollout_fixtures import CLUSTERS, FAST_CANARY, estate_with_strategy


def orchestrator(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_sigkill_at_every_step_boundary(tmp_path: Path, running_sim: dict[str, str]) -> None:
    root = estate_with_strategy(tmp_path / "estate", FAST_CANARY)
    local = root / "environments/local.yaml"  # one wave keeps the test short: every boundary is still hit
    local.write_text(local.read_text().replace("  - [aws]\n  - [azure, gcp]\n", "  - [aws, azure, gcp]\n"))
    # A short lease, so a killed driver's rollout is taken over in five seconds rather than thirty.
    env = {
        **running_sim,
        "ORCHESTRATOR_ROOT": str(root),
        "ORCHESTRATOR_LEASE_SECONDS": "5",
        "ORCHESTRATOR_HEARTBEAT_SECONDS": "0.5",
    }
    first = run_cli("deploy", "api", "--env", "local", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    # Every API request now takes 0.3 s, so each step's actions outlast the poll below: the kill lands
    # after step k's completion is committed and before step k+1's, at every boundary in turn.
    for cluster in ("aws", "azure", "gcp"):
        slow = run_cli("sim", "faults", cluster, "--latency-ms", "300", env=env)
        assert slow.returncode == 0, slow.stderr
    info = load_running_sim(env["ORCHESTRATOR_STATE_DIR"])
    assert info is not None
    control = SimControl.for_sim(info)
    for cluster in CLUSTERS:
        control.reset_requests(cluster)
    sessions = open_store(env["ORCHESTRATOR_DATABASE_URL"])
    with sessions() as session:
        first_id = repo.latest_deployment(session, "api", "local").id  # type: ignore[union-attr]

    def current() -> tuple[object, int, Phase]:
        with sessions() as session:
            latest = repo.latest_deployment(session, "api", "local")
            assert latest is not None
            return latest.id, latest.current_step, Phase(latest.phase)

    process = orchestrator("deploy", "api", "--env", "local", "--set", "replicas=3", env=env)
    deployment_id, kills, last_step, dead_leases = None, 0, 0, 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        latest_id, step, phase = current()
        if latest_id == first_id:  # the new deployment is not recorded yet
            time.sleep(0.02)
            continue
        deployment_id = latest_id
        if phase in TERMINAL_PHASES:
            break
        if step > last_step and process.poll() is None:
            process.send_signal(signal.SIGKILL)  # right after the step's completion was committed
            process.wait()
            kills, last_step = kills + 1, step
            # The dead driver still holds the deployment until its lease expires; the resume below is
            # refused until then, and takes it over after.
            holder = lease_holder(sessions, deployment_id)
            dead_leases += holder is not None and f"pid {process.pid}:" in holder.owner
        if process.poll() is not None:
            process = orchestrator("resume", str(deployment_id), env=env)
        time.sleep(0.02)
    process.wait(timeout=60)
    assert deployment_id is not None
    with sessions() as session:
        deployment = repo.get_deployment(session, deployment_id)
        assert deployment.phase == Phase.SUCCEEDED.value, deployment.message
        events = repo.events_for(session, deployment_id)
        completed = Counter(e.step for e in events if e.type == "step_completed")
        started = Counter(e.step for e in events if e.type == "step_started")
        total_steps = deployment.current_step
    # Every boundary between steps, and perhaps the one between the last step and the final phase.
    assert total_steps - 1 <= kills <= total_steps, f"{kills} kills for {total_steps} steps"
    assert sorted(completed) == list(range(total_steps))
    assert set(completed.values()) == {1}, completed
    assert set(started.values()) == {1}, started
    assert dead_leases == kills, f"{dead_leases} live leases left by {kills} killed drivers"
    with sessions() as session:
        assert repo.get_deployment(session, deployment_id).lease_owner is None  # given back at the end
    status = run_cli("status", "api", "--env", "local", "-o", "json", env=env)
    assert status.returncode == 0, status.stderr

    # No write was applied twice: the killed and resumed rollout made exactly the writes an uninterrupted
    # one makes (the same plan, one more release), read from the emulators' own request logs.
    killed_writes = applied_writes(control)
    for cluster in CLUSTERS:
        control.reset_requests(cluster)
        slow = run_cli("sim", "faults", cluster, "--latency-ms", "100", env=env)
        assert slow.returncode == 0, slow.stderr
    reference = orchestrator("deploy", "api", "--env", "local", "--set", "replicas=2", env=env)
    # ... and while it drives, a second driver is refused, naming the owner of the lease.
    deadline = time.monotonic() + 60
    while current()[0] == deployment_id and time.monotonic() < deadline:
        time.sleep(0.05)
    second = run_cli("resume", str(current()[0]), env=env)
    assert second.returncode == 1, second.stdout + second.stderr
    assert "is being driven by" in second.stderr and f"pid {reference.pid}" in second.stderr, second.stderr
    assert reference.wait(timeout=120) == 0
    assert killed_writes == applied_writes(control)
    control.close()


def lease_holder(sessions: sessionmaker[Session], deployment_id: object) -> LeaseHolder | None:
    assert isinstance(deployment_id, uuid.UUID)
    with sessions() as session:
        return leases.live_holder(session.connection(), deployment_id, now=datetime.now(UTC))


def applied_writes(control: SimControl) -> Counter[tuple[str, str, str]]:
    """Every write the emulators applied (a refused one changed nothing), by cluster, method and path."""
    return Counter(
        (cluster, entry["method"], entry["path"])
        for cluster in CLUSTERS
        for entry in control.requests(cluster, verb="write")
        if entry["status"] < 400
    )
