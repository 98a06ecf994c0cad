"""Server-side printing: `meta.k8s.io/v1 Table` responses, which `kubectl get` asks for."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]


def human_age(seconds: float) -> str:
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s}s"
    if s < 600:
        return f"{s // 60}m{s % 60}s" if s % 60 else f"{s // 60}m"
    if s < 3 * 3600:
        return f"{s // 60}m"
    if s < 48 * 3600:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def _age(obj: Obj, now: float) -> str:
    stamp = obj.get("metadata", {}).get("creationTimestamp")
    if not stamp:
        return "<unknown>"
    created = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    return human_age(now - created)


def _ports(obj: Obj) -> str:
    ports = obj.get("spec", {}).get("ports") or []
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


def _pod_ready(obj: Obj) -> str:
    statuses = obj.get("status", {}).get("containerStatuses") or []
    total = len(obj.get("spec", {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_status(obj: Obj) -> str:
    for status in obj.get("status", {}).get("containerStatuses") or []:
        waiting = status.get("state", {}).get("waiting")
        if waiting:
            return str(waiting.get("reason", "Waiting"))
    return str(obj.get("status", {}).get("phase", "Pending"))


Column = tuple[str, str, Callable[[Obj, float], Any]]

_NAME: Column = ("Name", "string", lambda o, _n: o["metadata"]["name"])
_AGE: Column = ("Age", "string", _age)

_COLUMNS: dict[str, list[Column]] = {
    "Deployment": [
        _NAME,
        (
            "Ready",
            "string",
            lambda o, _n: f"{o.get('status', {}).get('readyReplicas', 0)}/{o['spec'].get('replicas', 0)}",
        ),
        ("Up-to-date", "integer", lambda o, _n: o.get("status", {}).get("updatedReplicas", 0)),
        ("Available", "integer", lambda o, _n: o.get("status", {}).get("availableReplicas", 0)),
        _AGE,
    ],
    "ReplicaSet": [
        _NAME,
        ("Desired", "integer", lambda o, _n: o["spec"].get("replicas", 0)),
        ("Current", "integer", lambda o, _n: o.get("status", {}).get("replicas", 0)),
        ("Ready", "integer", lambda o, _n: o.get("status", {}).get("readyReplicas", 0)),
        _AGE,
    ],
    "Pod": [
        _NAME,
        ("Ready", "string", lambda o, _n: _pod_ready(o)),
        ("Status", "string", lambda o, _n: _pod_status(o)),
        (
            "Restarts",
            "string",
            lambda o, _n: str(
                sum(s.get("restartCount", 0) for s in o.get("status", {}).get("containerStatuses") or [])
            ),
        ),
        _AGE,
    ],
    "Service": [
        _NAME,
        ("Type", "string", lambda o, _n: o["spec"].get("type", "ClusterIP")),
        ("Cluster-IP", "string", lambda o, _n: o["spec"].get("clusterIP", "<none>")),
        ("External-IP", "string", lambda o, _n: "<none>"),
        ("Port(s)", "string", lambda o, _n: _ports(o)),
        _AGE,
    ],
    "Namespace": [
        _NAME,
        ("Status", "string", lambda o, _n: o.get("status", {}).get("phase", "Active")),
        _AGE,
    ],
    "VirtualService": [
        _NAME,
        ("Gateways", "string", lambda o, _n: str(o.get("spec", {}).get("gateways", []))),
        ("Hosts", "string", lambda o, _n: str(o.get("spec", {}).get("hosts", []))),
        _AGE,
    ],
}


def table(kind: str, items: list[Obj], resource_version: str, now: float, include_object: str) -> Obj:
    columns = _COLUMNS.get(kind, [_NAME, _AGE])
    rows = []
    for obj in items:
        row: Obj = {"cells": [fn(obj, now) for _name, _type, fn in columns]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": {k: v for k, v in obj["metadata"].items() if k != "managedFields"},
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {
                "name": name,
                "type": type_,
                "format": "name" if name == "Name" else "",
                "description": name,
                "priority": 0,
            }
            for name, type_, _fn in columns
        ],
        "rows": rows,
    }
