"""Server-side printing: `meta.k8s.io/v1 Table` responses, which `kubectl get` asks for."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
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
    """`80/TCP`, or `80:30080/TCP` for a port with a node port, as the API server prints them."""
    ports = obj.get("spec", {}).get("ports") or []
    shown = [
        f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}"
        for p in ports
    ]
    return ",".join(shown) or "<none>"


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


@dataclass(frozen=True)
class Column:
    """One column as the API server declares it; priority 1 columns show only with `kubectl get -o wide`."""

    name: str
    type: str
    cell: Callable[[Obj, float], Any]
    priority: int = 0
    description: str = ""
    format: str = ""


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def _pod_spec(obj: Obj) -> Obj:
    return (_spec(obj).get("template") or {}).get("spec") or {}


def _containers(spec: Obj) -> str:
    return ",".join(str(c.get("name", "")) for c in spec.get("containers") or []) or "<none>"


def _images(spec: Obj) -> str:
    return ",".join(str(c.get("image", "")) for c in spec.get("containers") or []) or "<none>"


def _label_selector(selector: Obj | None) -> str:
    """metav1.FormatLabelSelector: `k=v` (sorted by key), `k in (a,b)`, `k`, `!k`; empty is <none>."""
    if not selector:
        return "<none>"
    parts = [(k, f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        key, operator, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if operator == "Exists":
            parts.append((key, key))
        elif operator == "DoesNotExist":
            parts.append((key, f"!{key}"))
        else:
            word = "in" if operator == "In" else "notin"
            parts.append((key, f"{key} {word} ({','.join(sorted(values))})"))
    return ",".join(text for _key, text in sorted(parts)) or "<none>"


def _map_selector(selector: Obj | None) -> str:
    """labels.FormatLabels of a Service's selector."""
    if not selector:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def _json(value: Any) -> str:
    """A CRD printer column over a list prints it as JSON, as the API server does."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _restarts(obj: Obj, _now: float) -> str:
    return str(sum(s.get("restartCount", 0) for s in _status(obj).get("containerStatuses") or []))


def _readiness_gates(obj: Obj, _now: float) -> str:
    gates = _spec(obj).get("readinessGates") or []
    if not gates:
        return "<none>"
    conditions = {c.get("type"): c.get("status") for c in _status(obj).get("conditions") or []}
    ready = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
    return f"{ready}/{len(gates)}"


def _since(stamp: Any, now: float) -> str:
    if not isinstance(stamp, str) or not stamp:
        return "<unknown>"
    return human_age(now - datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def _event_object(obj: Obj) -> str:
    involved = obj.get("involvedObject") or {}
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


def _event_source(obj: Obj) -> str:
    source = obj.get("source") or {}
    component = source.get("component") or obj.get("reportingComponent") or ""
    return f"{component}, {source['host']}" if source.get("host") else str(component)


def _ref(obj: Obj) -> Obj:
    return _spec(obj).get("scaleTargetRef") or {}


def _hpa_targets(obj: Obj, _now: float) -> str:
    """formatHPAMetrics for resource metrics: `cpu: 5%/70%` (`<unknown>` before a measurement), an
    average value as `current/target`; past two metrics, `+ N more...`."""
    metrics = _spec(obj).get("metrics") or []
    if not metrics:
        return "<none>"
    statuses = _status(obj).get("currentMetrics") or []
    shown = []
    for index, metric in enumerate(metrics):
        resource = metric.get("resource") or {}
        target = resource.get("target") or {}
        status = statuses[index].get("resource") or {} if index < len(statuses) else {}
        current = status.get("current") or {}
        if metric.get("type", "Resource") != "Resource":
            shown.append("<unknown>")
        elif "averageValue" in target:
            shown.append(f"{current.get('averageValue', '<unknown>')}/{target['averageValue']}")
        else:
            now_value = current.get("averageUtilization")
            now_text = f"{now_value}%" if now_value is not None else "<unknown>"
            goal = f"{target['averageUtilization']}%" if "averageUtilization" in target else "<auto>"
            shown.append(f"{resource.get('name', '')}: {now_text}/{goal}")
    if len(shown) > 2:
        return f"{', '.join(shown[:2])} + {len(shown) - 2} more..."
    return ", ".join(shown)


_NAME = Column(
    "Name",
    "string",
    lambda o, _n: o["metadata"]["name"],
    format="name",
    description="Name must be unique within a namespace.",
)
_AGE = Column(
    "Age",
    "string",
    _age,
    description="CreationTimestamp is a timestamp representing the server time when this object was created.",
)


def _workload_wide() -> list[Column]:
    return [
        Column(
            "Containers",
            "string",
            lambda o, _n: _containers(_pod_spec(o)),
            1,
            "Names of each container in the template.",
        ),
        Column(
            "Images",
            "string",
            lambda o, _n: _images(_pod_spec(o)),
            1,
            "Images referenced by each container in the template.",
        ),
        Column(
            "Selector",
            "string",
            lambda o, _n: _label_selector(_spec(o).get("selector")),
            1,
            "Label selector for pods.",
        ),
    ]


# The columns of `kubectl get` as a v1.30 API server prints them (pkg/printers/internalversion for the
# built-in kinds, the CRDs' additionalPrinterColumns for Istio's), so scripts written against a real
# cluster read the same table here.
_COLUMNS: dict[str, list[Column]] = {
    "Deployment": [
        _NAME,
        Column(
            "Ready",
            "string",
            lambda o, _n: f"{_status(o).get('readyReplicas', 0)}/{_spec(o).get('replicas', 0)}",
            description="Number of the pod with ready state",
        ),
        Column(
            "Up-to-date",
            "integer",
            lambda o, _n: _status(o).get("updatedReplicas", 0),
            description="Pods of this deployment that have the desired template.",
        ),
        Column(
            "Available",
            "integer",
            lambda o, _n: _status(o).get("availableReplicas", 0),
            description="Pods of this deployment ready for at least minReadySeconds.",
        ),
        _AGE,
        *_workload_wide(),
    ],
    "ReplicaSet": [
        _NAME,
        Column(
            "Desired",
            "integer",
            lambda o, _n: _spec(o).get("replicas", 0),
            description="Replicas is the number of desired replicas.",
        ),
        Column(
            "Current",
            "integer",
            lambda o, _n: _status(o).get("replicas", 0),
            description="Replicas is the most recently observed number of replicas.",
        ),
        Column(
            "Ready",
            "integer",
            lambda o, _n: _status(o).get("readyReplicas", 0),
            description="The number of ready replicas for this replica set.",
        ),
        _AGE,
        *_workload_wide(),
    ],
    "Pod": [
        _NAME,
        Column(
            "Ready",
            "string",
            lambda o, _n: _pod_ready(o),
            description="The aggregate readiness state of this pod for accepting traffic.",
        ),
        Column(
            "Status",
            "string",
            lambda o, _n: _pod_status(o),
            description="The aggregate status of the containers in this pod.",
        ),
        Column(
            "Restarts",
            "string",
            _restarts,
            description="The number of times the containers in this pod have been restarted.",
        ),
        _AGE,
        Column(
            "IP",
            "string",
            lambda o, _n: _status(o).get("podIP") or "<none>",
            1,
            "IP address allocated to the pod.",
        ),
        Column(
            "Node",
            "string",
            lambda o, _n: _spec(o).get("nodeName") or "<none>",
            1,
            "Name of the Node this pod is running on.",
        ),
        Column(
            "Nominated Node",
            "string",
            lambda o, _n: _status(o).get("nominatedNodeName") or "<none>",
            1,
            "Name of the node nominated for this pod.",
        ),
        Column("Readiness Gates", "string", _readiness_gates, 1, "Pod readiness gates."),
    ],
    "Service": [
        _NAME,
        Column(
            "Type",
            "string",
            lambda o, _n: _spec(o).get("type", "ClusterIP"),
            description="The type of the service.",
        ),
        Column(
            "Cluster-IP",
            "string",
            lambda o, _n: _spec(o).get("clusterIP") or "<none>",
            description="The IP address of the service.",
        ),
        Column(
            "External-IP",
            "string",
            lambda o, _n: ",".join(_spec(o).get("externalIPs") or []) or "<none>",
            description="The external IP address of the service.",
        ),
        Column("Port(s)", "string", lambda o, _n: _ports(o), description="The ports the service exposes."),
        _AGE,
        Column(
            "Selector",
            "string",
            lambda o, _n: _map_selector(_spec(o).get("selector")),
            1,
            "Route service traffic to pods with label keys and values matching this selector.",
        ),
    ],
    "ConfigMap": [
        _NAME,
        Column(
            "Data",
            "integer",
            lambda o, _n: len(o.get("data") or {}) + len(o.get("binaryData") or {}),
            description="The number of data entries.",
        ),
        _AGE,
    ],
    "Secret": [
        _NAME,
        Column(
            "Type", "string", lambda o, _n: o.get("type", "Opaque"), description="The type of the secret."
        ),
        Column(
            "Data",
            "integer",
            lambda o, _n: len(o.get("data") or {}),
            description="The number of data entries.",
        ),
        _AGE,
    ],
    "ServiceAccount": [
        _NAME,
        Column(
            "Secrets",
            "integer",
            lambda o, _n: len(o.get("secrets") or []),
            description="Secrets pods running as this ServiceAccount may use.",
        ),
        _AGE,
    ],
    "Event": [
        Column(
            "Last Seen", "string", lambda o, n: _since(o.get("lastTimestamp"), n), description="Last seen"
        ),
        Column("Type", "string", lambda o, _n: o.get("type", ""), description="Type of this event."),
        Column("Reason", "string", lambda o, _n: o.get("reason", ""), description="Why the event happened."),
        Column("Object", "string", lambda o, _n: _event_object(o), description="The object it is about."),
        Column(
            "Subobject",
            "string",
            lambda o, _n: (o.get("involvedObject") or {}).get("fieldPath", ""),
            1,
            "The part of the object it is about.",
        ),
        Column("Source", "string", lambda o, _n: _event_source(o), 1, "The component reporting it."),
        Column("Message", "string", lambda o, _n: o.get("message", ""), description="What happened."),
        Column("First Seen", "string", lambda o, n: _since(o.get("firstTimestamp"), n), 1, "First seen"),
        Column("Count", "string", lambda o, _n: str(o.get("count", 1)), 1, "How often it happened."),
        Column("Name", "string", lambda o, _n: o["metadata"]["name"], 1, "The event's name.", "name"),
    ],
    "Namespace": [
        _NAME,
        Column(
            "Status",
            "string",
            lambda o, _n: _status(o).get("phase", "Active"),
            description="The status of the namespace",
        ),
        _AGE,
    ],
    "HorizontalPodAutoscaler": [
        _NAME,
        Column(
            "Reference",
            "string",
            lambda o, _n: f"{_ref(o).get('kind', '')}/{_ref(o).get('name', '')}",
            description="Reference to target resource",
        ),
        Column("Targets", "string", _hpa_targets, description="Current and target utilization"),
        Column(
            "MinPods",
            "string",
            lambda o, _n: str(_spec(o).get("minReplicas", "<unset>")),
            description="Minimum number of replicas",
        ),
        Column(
            "MaxPods",
            "integer",
            lambda o, _n: _spec(o).get("maxReplicas", 0),
            description="Maximum number of replicas",
        ),
        Column(
            "Replicas",
            "integer",
            lambda o, _n: _status(o).get("currentReplicas", 0),
            description="Current number of replicas",
        ),
        _AGE,
    ],
    "PodDisruptionBudget": [
        _NAME,
        Column(
            "Min Available",
            "string",
            lambda o, _n: str(_spec(o).get("minAvailable", "N/A")),
            description="The minimum number of pods that must be available",
        ),
        Column(
            "Max Unavailable",
            "string",
            lambda o, _n: str(_spec(o).get("maxUnavailable", "N/A")),
            description="The maximum number of pods that may be unavailable",
        ),
        Column(
            "Allowed Disruptions",
            "integer",
            lambda o, _n: _status(o).get("disruptionsAllowed", 0),
            description="Calculated number of pods that may be disrupted at this time",
        ),
        _AGE,
    ],
    # Istio's CRDs (additionalPrinterColumns).
    "VirtualService": [
        _NAME,
        Column(
            "Gateways",
            "string",
            lambda o, _n: _json(_spec(o).get("gateways")),
            description="The names of gateways and sidecars that should apply these routes",
        ),
        Column(
            "Hosts",
            "string",
            lambda o, _n: _json(_spec(o).get("hosts")),
            description="The destination hosts to which traffic is being sent",
        ),
        _AGE,
    ],
    "DestinationRule": [
        _NAME,
        Column(
            "Host",
            "string",
            lambda o, _n: _json(_spec(o).get("host")),
            description="The name of a service from the service registry",
        ),
        _AGE,
    ],
    "ServiceEntry": [
        _NAME,
        Column(
            "Hosts",
            "string",
            lambda o, _n: _json(_spec(o).get("hosts")),
            description="The hosts associated with the ServiceEntry",
        ),
        Column(
            "Location",
            "string",
            lambda o, _n: _json(_spec(o).get("location")),
            description="MESH_EXTERNAL or MESH_INTERNAL",
        ),
        Column(
            "Resolution",
            "string",
            lambda o, _n: _json(_spec(o).get("resolution")),
            description="Service resolution mode for the hosts (NONE, STATIC, or DNS)",
        ),
        _AGE,
    ],
    "PeerAuthentication": [
        _NAME,
        Column(
            "Mode",
            "string",
            lambda o, _n: _json((_spec(o).get("mtls") or {}).get("mode")),
            description="Defines the mTLS mode used for peer authentication.",
        ),
        _AGE,
    ],
    "AuthorizationPolicy": [
        _NAME,
        Column(
            "Action",
            "string",
            lambda o, _n: _json(_spec(o).get("action")),
            description="The operation to take.",
        ),
        _AGE,
    ],
}


def columns_of(kind: str) -> list[Column]:
    return _COLUMNS.get(kind, [_NAME, _AGE])


def table(kind: str, items: list[Obj], resource_version: str, now: float, include_object: str) -> Obj:
    columns = columns_of(kind)
    rows = []
    for obj in items:
        row: Obj = {"cells": [column.cell(obj, now) for column in columns]}
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
                "name": column.name,
                "type": column.type,
                "format": column.format,
                "description": column.description or column.name,
                "priority": column.priority,
            }
            for column in columns
        ],
        "rows": rows,
    }
