"""A rollout survives SIGKILL at every step boundary: resumed, nothing is done or recorded twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from orchestrator.runtime import open_store
from orchestrator.store import repository as repo
from orchestrator.store.models import TERMINAL_PHASES, Phase
from tests.helpers import REPO, run_cli
from tests.integration.rollout_fixtures import FAST_CANARY, estate_with_strategy


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
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(root)}
    first = run_cli("deploy", "api", "--env", "local", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    # Every API request now takes 0.3 s, so each step's actions outlast the poll below: the kill lands
    # after step k's completion is committed and before step k+1's, at every boundary in turn.
    for cluster in ("aws", "azure", "gcp"):
        slow = run_cli("sim", "faults", cluster, "--latency-ms", "300", env=env)
        assert slow.returncode == 0, slow.stderr
    sessions = open_store(env["ORCHESTRATOR_DATABASE_URL"])
    with sessions() as session:
        first_id = repo.latest_deployment(session, "api", "local").id  # type: ignore[union-attr]

    def current() -> tuple[object, int, Phase]:
        with sessions() as session:
            latest = repo.latest_deployment(session, "api", "local")
            assert latest is not None
            return latest.id, latest.current_step, Phase(latest.phase)

    process = orchestrator("deploy", "api", "--env", "local", "--set", "replicas=3", env=env)
    deployment_id, kills, last_step = None, 0, 0
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
    status = run_cli("status", "api", "--env", "local", "-o", "json", env=env)
    assert status.returncode == 0, status.stderr
