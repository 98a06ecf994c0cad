"""Running the sim in the background, like kind or minikube.

`start_daemon` spawns `python -m orchestrator.sim serve` detached, waits until it has written
`state.json` and answers `/readyz`, and returns its `SimInfo`; `stop_daemon` stops it. The daemon keeps
objects in memory only: a restart starts from empty clusters, like a fresh kind cluster.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from orchestrator.errors import OrchestratorError
from orchestrator.logs import get_logger
from orchestrator.sim.client import (
    STATE_FILE,
    SimInfo,
    load_running_sim,
    read_state,
    sim_dir,
    sim_process_alive,
)
from orchestrator.sim.server import CONTROL, DEFAULT_CLUSTERS, SimServer

log = get_logger(__name__)

TOKEN_FILE = "token"
LOG_FILE = "sim.log"
PORTS_FILE = "ports.json"


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _previous_ports(directory: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Ports of the last run, when still free, so kubeconfigs copied elsewhere keep working."""
    api: dict[str, int] = {}
    metrics: dict[str, int] = {}
    try:
        recorded = json.loads((directory / PORTS_FILE).read_text())
    except (OSError, ValueError):
        return api, metrics
    for name, pair in recorded.items():
        if isinstance(pair, list) and len(pair) == 2:
            if pair[0] and _port_free(int(pair[0])):
                api[name] = int(pair[0])
            if pair[1] and _port_free(int(pair[1])):
                metrics[name] = int(pair[1])
    return api, metrics


def _token(directory: Path) -> str:
    path = directory / TOKEN_FILE
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    path.write_text(token)
    path.chmod(0o600)
    return token


def serve_forever(state_dir: Path | str | None, clusters: Iterable[str], ready_delay: float = 0.5) -> None:
    """Run the sim in this process until SIGTERM/SIGINT, recording it in `state.json`."""
    directory = sim_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    ports, metrics_ports = _previous_ports(directory)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with SimServer(
        clusters=tuple(clusters),
        state_dir=directory,
        token=_token(directory),
        ports=ports,
        metrics_ports=metrics_ports,
        ready_delay=ready_delay,
    ) as sim:
        state = {
            "pid": os.getpid(),
            "token": sim.token,
            "ca_path": str(sim.ca_path.resolve()),
            "kubeconfig_path": str(sim.kubeconfig_path.resolve()),
            "started_at": time.time(),
            "control_endpoint": sim.control_endpoint,
            "objects_persisted": False,
            "clusters": {
                n: {"endpoint": sim.endpoint(n), "metrics_endpoint": sim.metrics_endpoint(n)}
                for n in sim.cluster_names
            },
        }
        ports_used = {n: [sim.cluster(n).port, sim.cluster(n).metrics_port] for n in sim.cluster_names}
        ports_used[CONTROL] = [int(sim.control_endpoint.rsplit(":", 1)[1]), 0]
        (directory / PORTS_FILE).write_text(json.dumps(ports_used))
        tmp = directory / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.chmod(0o600)
        tmp.replace(directory / STATE_FILE)
        log.info("sim.daemon_ready", pid=os.getpid())
        stop.wait()
        log.info("sim.daemon_stopping")
    recorded = read_state(directory)
    if recorded is not None and recorded.pid == os.getpid():
        (directory / STATE_FILE).unlink(missing_ok=True)


def _ready(info: SimInfo) -> bool:
    ctx = ssl.create_default_context(cafile=str(info.ca_path))
    for cluster in info.clusters.values():
        try:
            with urllib.request.urlopen(f"{cluster.endpoint}/readyz", context=ctx, timeout=2) as resp:
                if resp.status != 200:
                    return False
        except OSError:
            return False
    return True


def start_daemon(
    state_dir: Path | str | None = None,
    clusters: Iterable[str] = DEFAULT_CLUSTERS,
    *,
    timeout: float = 30.0,
    ready_delay: float = 0.5,
) -> tuple[SimInfo, bool]:
    """Start the sim in the background (or find it running). Returns (info, started_now)."""
    running = load_running_sim(state_dir)
    if running is not None:
        return running, False
    directory = sim_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    names = list(clusters)
    cmd = [
        sys.executable,
        "-m",
        "orchestrator.sim",
        "serve",
        "--clusters",
        ",".join(names),
        "--ready-delay",
        str(ready_delay),
    ]
    if state_dir is not None:
        cmd += ["--state-dir", str(Path(state_dir).resolve())]
    with open(directory / LOG_FILE, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=os.getcwd(),
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (directory / LOG_FILE).read_text(errors="replace")[-2000:]
            raise OrchestratorError(
                f"the sim exited during start-up (code {proc.returncode}); "
                f"its log {directory / LOG_FILE} ends with:\n{tail}"
            )
        info = read_state(directory)
        if info is not None and info.pid == proc.pid and _ready(info):
            return info, True
        time.sleep(0.1)
    proc.terminate()
    raise OrchestratorError(f"the sim did not become ready within {timeout:.0f}s; see {directory / LOG_FILE}")


def stop_daemon(state_dir: Path | str | None = None, timeout: float = 15.0) -> bool:
    """Stop the running sim; False when none was running."""
    info = load_running_sim(state_dir)
    if info is None:
        return False
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # The daemon removes its state file just before it exits: wait for the process too, so that
        # "stopped" means its ports are free and a new `sim up` cannot race it.
        if load_running_sim(state_dir) is None and not sim_process_alive(info.pid):
            return True
        time.sleep(0.05)
    os.kill(info.pid, signal.SIGKILL)
    (sim_dir(state_dir) / STATE_FILE).unlink(missing_ok=True)
    return True
