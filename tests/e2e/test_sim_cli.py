"""`orchestrator sim up | status | down` as a user runs them: a background sim, its kubeconfig and state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from orchestrator.sim.client import load_running_sim


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    state = tmp_path / "state"
    yield state
    info = load_running_sim(state)
    if info is not None:  # a failed test must not leave a daemon behind
        os.kill(info.pid, signal.SIGKILL)


def orchestrator(state_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORCHESTRATOR_STATE_DIR": str(state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def running(pid: int) -> bool:
    """Alive and not a zombie (the daemon's parent, `sim up`, has exited; nobody may reap it at once)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.split(") ", 1)[1][:1] != "Z"


def kubectl(kubeconfig: Path, context: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    return subprocess.run(
        ["kubectl", "--context", context, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_up_status_down(state_dir: Path) -> None:
    up = orchestrator(state_dir, "sim", "up")
    assert up.returncode == 0, up.stderr
    assert up.stdout.startswith("sim started\n")
    for context in ("sim-aws", "sim-azure", "sim-gcp"):
        assert context in up.stdout
    assert "memory only" in up.stdout

    sim_dir = state_dir / "sim"
    state = json.loads((sim_dir / "state.json").read_text())
    assert set(state["clusters"]) == {"aws", "azure", "gcp"}
    assert Path(state["ca_path"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert oct((sim_dir / "state.json").stat().st_mode & 0o777) == "0o600"

    kubeconfig = sim_dir / "kubeconfig"
    config = yaml.safe_load(kubeconfig.read_text())
    assert [c["name"] for c in config["contexts"]] == ["sim-aws", "sim-azure", "sim-gcp"]
    for context in ("sim-aws", "sim-azure", "sim-gcp"):
        result = kubectl(kubeconfig, context, "get", "namespaces", "-o", "name")
        assert result.returncode == 0, result.stderr
        assert "namespace/default" in result.stdout.split()

    created = kubectl(kubeconfig, "sim-gcp", "create", "configmap", "kept", "--from-literal=a=1")
    assert created.returncode == 0, created.stderr

    again = orchestrator(state_dir, "sim", "up", "-o", "json")
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert (second["started"], second["pid"]) == (False, state["pid"])
    assert kubectl(kubeconfig, "sim-gcp", "get", "configmap", "kept").returncode == 0

    status = json.loads(orchestrator(state_dir, "sim", "status", "-o", "json").stdout)
    assert status["running"] is True
    assert status["objects_persisted"] is False
    assert status["clusters"]["azure"]["endpoint"] == state["clusters"]["azure"]["endpoint"]
    assert status["clusters"]["azure"]["context"] == "sim-azure"
    assert "token" not in status

    info = load_running_sim(state_dir)
    assert info is not None
    assert info.pid == state["pid"]
    assert info.kubeconfig_path == kubeconfig.resolve()
    assert info.endpoint("aws") == state["clusters"]["aws"]["endpoint"]

    down = orchestrator(state_dir, "sim", "down")
    assert (down.returncode, down.stdout) == (0, "sim stopped\n")
    assert load_running_sim(state_dir) is None
    assert not running(state["pid"])
    text = orchestrator(state_dir, "sim", "status")
    assert text.returncode == 0
    assert text.stdout.startswith("sim not running")
    assert orchestrator(state_dir, "sim", "down").stdout == "sim was not running\n"


def test_a_restart_keeps_the_ports_and_token_but_not_the_objects(state_dir: Path) -> None:
    first = json.loads(orchestrator(state_dir, "sim", "up", "--clusters", "aws", "-o", "json").stdout)
    kubeconfig = Path(first["kubeconfig_path"])
    assert kubectl(kubeconfig, "sim-aws", "create", "configmap", "lost").returncode == 0
    assert orchestrator(state_dir, "sim", "down").returncode == 0

    second = json.loads(orchestrator(state_dir, "sim", "up", "--clusters", "aws", "-o", "json").stdout)
    assert second["clusters"] == first["clusters"]
    assert kubectl(kubeconfig, "sim-aws", "get", "configmap", "lost").returncode == 1

    # Rehearse an outage: the cluster refuses connections until it is brought back.
    down = orchestrator(state_dir, "sim", "faults", "aws", "--down", "--error-rate", "0.5")
    assert (down.returncode, down.stdout) == (0, "sim cluster aws: faults error_rate=0.5, down=True\n")
    refused = kubectl(kubeconfig, "sim-aws", "get", "namespaces")
    assert refused.returncode == 1
    assert "was refused" in refused.stderr
    cleared = orchestrator(state_dir, "sim", "faults", "aws", "--clear")
    assert cleared.stdout == "sim cluster aws: faults none\n"
    assert kubectl(kubeconfig, "sim-aws", "get", "namespaces").returncode == 0
    unknown = orchestrator(state_dir, "sim", "faults", "mars")
    assert unknown.returncode == 2
    assert "unknown sim cluster 'mars'; known sim clusters: aws" in unknown.stderr

    assert orchestrator(state_dir, "sim", "down").returncode == 0


def test_bad_cluster_names_are_a_usage_error(state_dir: Path) -> None:
    result = orchestrator(state_dir, "sim", "up", "--clusters", "AWS,eu_west")
    assert result.returncode == 2
    assert "--clusters" in result.stderr
    assert "AWS, eu_west" in result.stderr
    assert load_running_sim(state_dir) is None


def test_up_with_other_clusters_than_the_running_sim_says_what_runs(state_dir: Path) -> None:
    first = orchestrator(state_dir, "sim", "up", "--clusters", "a,b,c,d")
    assert first.returncode == 0, first.stderr
    assert [line.split()[0] for line in first.stdout.splitlines()[2:6]] == [
        "sim-a",
        "sim-b",
        "sim-c",
        "sim-d",
    ]
    pid = json.loads((state_dir / "sim" / "state.json").read_text())["pid"]

    other = orchestrator(state_dir, "sim", "up", "--clusters", "a,e")
    assert other.returncode == 1
    assert other.stdout == ""
    assert other.stderr == (
        "error: the sim is already running with clusters a, b, c, d, not e; run `orchestrator sim down` "
        "first to start other clusters (its objects are lost)\n"
    )
    same = orchestrator(state_dir, "sim", "up", "--clusters", "b,a")
    assert same.returncode == 0, same.stderr
    assert same.stdout.startswith("sim already running: a, b, c, d\n")
    plain = orchestrator(state_dir, "sim", "up")  # no --clusters: whatever runs is fine
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.startswith("sim already running: a, b, c, d\n")
    info = load_running_sim(state_dir)
    assert info is not None and info.pid == pid and list(info.clusters) == ["a", "b", "c", "d"]
    assert orchestrator(state_dir, "sim", "down").returncode == 0
