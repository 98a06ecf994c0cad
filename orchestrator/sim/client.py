"""Finding and controlling a running sim (`orchestrator sim up`) from other processes.

`load_running_sim(state_dir)` reads `<state dir>/sim/state.json` and returns a `SimInfo` when the
daemon it names is alive. `SimControl` drives the `/_sim/` control API (faults, request log) over HTTPS.
"""

from __future__ import annotations

import json
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from orchestrator import settings

STATE_FILE = "state.json"


def sim_dir(state_dir: Path | str | None = None) -> Path:
    return Path(state_dir if state_dir is not None else settings.state_dir()) / "sim"


@dataclass(frozen=True)
class SimClusterInfo:
    name: str
    endpoint: str  # https://127.0.0.1:PORT
    metrics_endpoint: str  # http://127.0.0.1:PORT/metrics

    @property
    def context(self) -> str:
        return f"sim-{self.name}"


@dataclass(frozen=True)
class SimInfo:
    pid: int
    token: str
    ca_path: Path
    kubeconfig_path: Path
    clusters: dict[str, SimClusterInfo]
    started_at: float
    directory: Path
    control_endpoint: str  # the /_sim/ control API; stays up when every cluster is down

    def endpoint(self, cluster: str) -> str:
        return self._cluster(cluster).endpoint

    def metrics_endpoint(self, cluster: str) -> str:
        return self._cluster(cluster).metrics_endpoint

    def _cluster(self, name: str) -> SimClusterInfo:
        try:
            return self.clusters[name]
        except KeyError:
            raise KeyError(
                f"the running sim has no cluster {name!r}; it has: {', '.join(self.clusters)}"
            ) from None

    def to_json(self, *, include_token: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pid": self.pid,
            "ca_path": str(self.ca_path),
            "kubeconfig_path": str(self.kubeconfig_path),
            "started_at": self.started_at,
            "control_endpoint": self.control_endpoint,
            "clusters": {
                n: {"endpoint": c.endpoint, "metrics_endpoint": c.metrics_endpoint, "context": c.context}
                for n, c in self.clusters.items()
            },
        }
        if include_token:
            out["token"] = self.token
        return out


def sim_process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not running; a reused pid is not the sim
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().split(") ", 1)[1][:1] == "Z":
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"orchestrator.sim" in cmdline.read()
    except OSError:
        return True


def read_state(directory: Path) -> SimInfo | None:
    """The SimInfo recorded in `directory/state.json`, alive or not; None if there is none."""
    path = directory / STATE_FILE
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return SimInfo(
        pid=int(raw["pid"]),
        token=str(raw["token"]),
        ca_path=Path(raw["ca_path"]),
        kubeconfig_path=Path(raw["kubeconfig_path"]),
        clusters={
            name: SimClusterInfo(name, c["endpoint"], c["metrics_endpoint"])
            for name, c in raw["clusters"].items()
        },
        started_at=float(raw.get("started_at", 0.0)),
        directory=directory,
        control_endpoint=str(raw.get("control_endpoint") or next(iter(raw["clusters"].values()))["endpoint"]),
    )


def load_running_sim(state_dir: Path | str | None = None) -> SimInfo | None:
    """The running sim of this state directory (default `$ORCHESTRATOR_STATE_DIR` or `./.orchestrator`)."""
    info = read_state(sim_dir(state_dir))
    if info is None or not sim_process_alive(info.pid):
        return None
    return info


class SimControl:
    """The `/_sim/` control API of a sim, in process or daemon (any cluster's endpoint serves all)."""

    def __init__(self, endpoint: str, token: str, ca_path: Path | str, timeout: float = 10.0) -> None:
        self._client = httpx.Client(
            base_url=endpoint,
            verify=ssl.create_default_context(cafile=str(ca_path)),
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
        )

    @classmethod
    def for_sim(cls, info: SimInfo) -> SimControl:
        return cls(info.control_endpoint, info.token, info.ca_path)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SimControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        resp = self._client.request(method, path, json=body)
        if resp.status_code >= 400:
            raise RuntimeError(f"sim control {method} {path}: {resp.status_code} {resp.text}")
        return resp.json()

    def faults(self, cluster: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/_sim/clusters/{cluster}/faults")
        return result

    def set_faults(self, cluster: str, **settings: Any) -> dict[str, Any]:
        """Change some fault settings (`error_rate=0.2`, `throttle_rate=0.2`, `down=True`, ...)."""
        result: dict[str, Any] = self._call("PATCH", f"/_sim/clusters/{cluster}/faults", settings)
        return result

    def clear_faults(self, cluster: str) -> None:
        self._call("DELETE", f"/_sim/clusters/{cluster}/faults")

    def requests(self, cluster: str, verb: str | None = None) -> list[dict[str, Any]]:
        path = f"/_sim/clusters/{cluster}/requests" + (f"?verb={verb}" if verb else "")
        result: list[dict[str, Any]] = self._call("GET", path)["requests"]
        return result

    def reset_requests(self, cluster: str) -> None:
        self._call("DELETE", f"/_sim/clusters/{cluster}/requests")
