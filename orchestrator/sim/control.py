"""The `/_sim/` control API: fault injection and the request log over HTTP (bearer token required).

    GET    /_sim/clusters                      names, endpoints and fault settings
    GET    /_sim/clusters/<name>/faults        current fault settings
    PUT    /_sim/clusters/<name>/faults        replace them (JSON FaultConfig; unknown keys are a 400)
    PATCH  /_sim/clusters/<name>/faults        change some of them
    DELETE /_sim/clusters/<name>/faults        clear all faults (and bring the cluster back up)
    GET    /_sim/clusters/<name>/requests      the request log (`?verb=write` for writes only)
    DELETE /_sim/clusters/<name>/requests      reset it

Every cluster endpoint controls every cluster of the process, and so does the separate control
endpoint (`SimServer.control_endpoint`), which is never down: a cluster that is down can always be
brought back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from orchestrator.sim.api import Request, Response, json_response
from orchestrator.sim.errors import status_body
from orchestrator.sim.faults import FaultConfig, parse_fault_config

if TYPE_CHECKING:
    from orchestrator.sim.server import SimCluster


def _error(code: int, message: str) -> Response:
    reasons = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed"}
    return json_response(code, status_body(code, message, reasons.get(code, "BadRequest")))


def make_control_handler(clusters: Callable[[], Mapping[str, SimCluster]]) -> Callable[[Request], Response]:
    def handle(req: Request) -> Response:
        parts = req.path.strip("/").split("/")[1:]
        known = clusters()
        if parts == ["clusters"] and req.method == "GET":
            return json_response(
                200,
                {
                    "clusters": [
                        {
                            "name": c.name,
                            "endpoint": c.endpoint_url,
                            "metrics": c.metrics_url,
                            "faults": c.faults.config.to_json(),
                        }
                        for c in known.values()
                    ]
                },
            )
        if len(parts) != 3 or parts[0] != "clusters":
            return _error(404, f"no sim control path {req.path}")
        cluster = known.get(parts[1])
        if cluster is None:
            return _error(404, f"unknown cluster {parts[1]!r}; known: {', '.join(known)}")
        if parts[2] == "faults":
            if req.method == "GET":
                return json_response(200, cluster.faults.config.to_json())
            if req.method == "DELETE":
                cluster.faults.clear()
                return json_response(200, cluster.faults.config.to_json())
            if req.method in ("PUT", "PATCH", "POST"):
                try:
                    data = json.loads(req.body or b"{}")
                    if not isinstance(data, dict):
                        raise ValueError("the body must be a JSON object of fault settings")
                    base = cluster.faults.config if req.method == "PATCH" else FaultConfig()
                    config = parse_fault_config(data, base)
                except ValueError as exc:
                    return _error(400, f"bad fault settings for cluster {cluster.name}: {exc}")
                cluster.faults.replace(config)
                return json_response(200, config.to_json())
        if parts[2] == "requests":
            if req.method == "GET":
                entries = cluster.request_log.entries()
                verb = req.query.get("verb")
                if verb:
                    entries = [e for e in entries if e.verb == verb]
                return json_response(200, {"requests": [e.to_json() for e in entries]})
            if req.method == "DELETE":
                cluster.request_log.reset()
                return json_response(200, {"requests": []})
        return _error(405, f"{req.method} is not supported on {req.path}")

    return handle
