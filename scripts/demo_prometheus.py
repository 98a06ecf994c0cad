"""Start (or stop) a Prometheus that scrapes the running sim's mesh metrics, for `make demo`.

`python scripts/demo_prometheus.py start` prints the URL to export as ORCHESTRATOR_PROMETHEUS_URL, or nothing
when Prometheus is not installed (the gates then read the mesh /metrics directly). `stop` ends it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from orchestrator.settings import state_dir
from orchestrator.sim.client import load_running_sim


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(folder: Path) -> str | None:
    binary = shutil.which("prometheus")
    sim = load_running_sim()
    if binary is None or sim is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    targets = [sim.metrics_endpoint(name).split("//", 1)[1].split("/", 1)[0] for name in sim.clusters]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "sim-mesh", "static_configs": [{"targets": targets}]}],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    log = (folder / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    (folder / "pid").write_text(str(process.pid))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # ready, and at least one scrape of every target done
        try:
            answer = httpx.get(f"{url}/api/v1/query", params={"query": "up"}, timeout=2).json()
            if len(answer["data"]["result"]) == len(targets):
                return url
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.2)
    stop(folder)
    return None


def stop(folder: Path) -> None:
    pid_file = folder / "pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        pid_file.unlink()


def main() -> None:
    folder = state_dir() / "prometheus"
    if sys.argv[1:] == ["start"]:
        url = start(folder)
        if url:
            print(url)
    elif sys.argv[1:] == ["stop"]:
        stop(folder)
    else:
        sys.exit("usage: demo_prometheus.py start|stop")


if __name__ == "__main__":
    main()
