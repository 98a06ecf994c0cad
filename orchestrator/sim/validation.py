"""Defaulting and validation, the parts of the API server's that a deploy tool runs into.

Defaults are idempotent (applying them twice changes nothing), so an unchanged apply stays a no-op.
Validation reports every bad field at once as a 422 `Invalid` with one cause per field.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from typing import Any

from orchestrator.sim.errors import invalid
from orchestrator.sim.resources import ResourceType
from orchestrator.sim.selectors import labels_match, selector_from_label_selector

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _default_containers(pod_spec: dict[str, Any]) -> None:
    pod_spec.setdefault("restartPolicy", "Always")
    pod_spec.setdefault("terminationGracePeriodSeconds", 30)
    pod_spec.setdefault("dnsPolicy", "ClusterFirst")
    pod_spec.setdefault("schedulerName", "default-scheduler")
    pod_spec.setdefault("securityContext", {})
    for container in pod_spec.get("containers") or []:
        if not isinstance(container, dict):
            continue
        image = str(container.get("image", ""))
        tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
        latest = image.endswith(":latest") or not tagged
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")


def _default_workload(obj: dict[str, Any], kind: str) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    if kind == "Deployment":
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxSurge", "25%")
            rolling.setdefault("maxUnavailable", "25%")
    template = spec.get("template")
    if isinstance(template, dict):
        template.setdefault("metadata", {})
        if isinstance(template.get("spec"), dict):
            _default_containers(template["spec"])


def _default_service(obj: dict[str, Any], allocate_ip: str) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec.get("clusterIP") != "None":
        spec.setdefault("clusterIP", allocate_ip)
    spec.setdefault("clusterIPs", [spec["clusterIP"]])
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


def apply_defaults(rt: ResourceType, obj: dict[str, Any], *, allocate_ip: str = "10.96.0.10") -> None:
    if rt.kind in ("Deployment", "ReplicaSet"):
        _default_workload(obj, rt.kind)
    elif rt.kind == "Pod" and isinstance(obj.get("spec"), dict):
        _default_containers(obj["spec"])
    elif rt.kind == "Service":
        _default_service(obj, allocate_ip)
    elif rt.kind == "Namespace":
        name = obj.get("metadata", {}).get("name", "")
        obj["metadata"].setdefault("labels", {}).setdefault("kubernetes.io/metadata.name", name)
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif rt.kind == "Secret" and obj.get("stringData"):
        # As the API server does: stringData is merged into data on write (its keys win) and is never
        # stored or returned. Written here, not shared with the client side, so the two are tested apart.
        data = dict(obj.get("data") or {})
        for key, value in obj.pop("stringData").items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data
    elif rt.kind == "ServiceAccount":
        pass


def _check_meta(meta: dict[str, Any], causes: list[tuple[str, str]]) -> None:
    name = meta.get("name")
    if not name:
        causes.append(("metadata.name", "Required value: name or generateName is required"))
    elif not isinstance(name, str) or len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        causes.append(
            (
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                "alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        )
    for field in ("labels", "annotations"):
        values = meta.get(field)
        if values is None:
            continue
        if not isinstance(values, dict):
            causes.append((f"metadata.{field}", "Invalid value: must be a map of strings"))
            continue
        for key, value in values.items():
            if not isinstance(value, str):
                causes.append((f"metadata.{field}.{key}", f"Invalid value: {value!r}: must be a string"))
            elif field == "labels" and (len(value) > 63 or not _LABEL_VALUE.match(value)):
                causes.append(
                    (
                        f"metadata.labels.{key}",
                        f'Invalid value: "{value}": a valid label value must be '
                        "63 characters or less, alphanumeric, '-', '_' or '.'",
                    )
                )


def _check_pod_spec(spec: Any, where: str, causes: list[tuple[str, str]]) -> None:
    if not isinstance(spec, dict):
        causes.append((where, "Required value"))
        return
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        causes.append((f"{where}.containers", "Required value"))
        return
    seen: set[str] = set()
    for i, container in enumerate(containers):
        at = f"{where}.containers[{i}]"
        if not isinstance(container, dict):
            causes.append((at, "Invalid value: must be an object"))
            continue
        name = container.get("name")
        if not name:
            causes.append((f"{at}.name", "Required value"))
        elif not isinstance(name, str) or not _DNS1123_LABEL.match(name):
            causes.append((f"{at}.name", f'Invalid value: "{name}": must be a DNS-1123 label'))
        elif name in seen:
            causes.append((f"{at}.name", f'Duplicate value: "{name}"'))
        else:
            seen.add(name)
        if not container.get("image"):
            causes.append((f"{at}.image", "Required value"))
        for j, port in enumerate(container.get("ports") or []):
            value = port.get("containerPort") if isinstance(port, dict) else None
            if not isinstance(value, int) or not 0 < value < 65536:
                causes.append(
                    (
                        f"{at}.ports[{j}].containerPort",
                        f"Invalid value: {value!r}: must be between 1 and 65535, inclusive",
                    )
                )


def _check_workload(obj: dict[str, Any], causes: list[tuple[str, str]]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        causes.append(("spec", "Required value"))
        return
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        causes.append(("spec.replicas", f"Invalid value: {replicas!r}: must be greater than or equal to 0"))
    selector = spec.get("selector")
    template = spec.get("template")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        causes.append(("spec.selector", "Required value"))
    elif isinstance(template, dict):
        labels = (template.get("metadata") or {}).get("labels") or {}
        if not labels_match(selector_from_label_selector(selector), labels):
            causes.append(
                (
                    "spec.template.metadata.labels",
                    f"Invalid value: {labels!r}: `selector` does not match template `labels`",
                )
            )
    if not isinstance(template, dict):
        causes.append(("spec.template", "Required value"))
    else:
        _check_pod_spec(template.get("spec"), "spec.template.spec", causes)


def _check_service(obj: dict[str, Any], causes: list[tuple[str, str]]) -> None:
    spec = obj.get("spec") or {}
    for i, port in enumerate(spec.get("ports") or []):
        value = port.get("port") if isinstance(port, dict) else None
        if not isinstance(value, int) or not 0 < value < 65536:
            causes.append(
                (f"spec.ports[{i}].port", f"Invalid value: {value!r}: must be between 1 and 65535, inclusive")
            )
    ip = spec.get("clusterIP")
    if ip not in (None, "", "None"):
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            causes.append(("spec.clusterIP", f"Invalid value: {ip!r}: must be a valid IP address or None"))


def _check_virtual_service(obj: dict[str, Any], causes: list[tuple[str, str]]) -> None:
    spec = obj.get("spec") or {}
    for i, route in enumerate(spec.get("http") or []):
        if not isinstance(route, dict):
            causes.append((f"spec.http[{i}]", "Invalid value: must be an object"))
            continue
        for j, dest in enumerate(route.get("route") or []):
            weight = dest.get("weight") if isinstance(dest, dict) else None
            if weight is not None and (not isinstance(weight, int) or isinstance(weight, bool) or weight < 0):
                causes.append(
                    (
                        f"spec.http[{i}].route[{j}].weight",
                        f"Invalid value: {weight!r}: must be a non-negative integer",
                    )
                )
            if isinstance(dest, dict) and not (dest.get("destination") or {}).get("host"):
                causes.append((f"spec.http[{i}].route[{j}].destination.host", "Required value"))


def validate(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None = None) -> None:
    """Raise 422 Invalid listing every bad field of `obj` (and immutable fields changed from `old`)."""
    causes: list[tuple[str, str]] = []
    _check_meta(obj.get("metadata") or {}, causes)
    if rt.kind in ("Deployment", "ReplicaSet"):
        _check_workload(obj, causes)
        if old is not None and old.get("spec", {}).get("selector") != obj.get("spec", {}).get("selector"):
            causes.append(
                (
                    "spec.selector",
                    f"Invalid value: {obj.get('spec', {}).get('selector')!r}: field is immutable",
                )
            )
    elif rt.kind == "Pod":
        _check_pod_spec(obj.get("spec"), "spec", causes)
    elif rt.kind == "Service":
        _check_service(obj, causes)
    elif rt.kind == "VirtualService":
        _check_virtual_service(obj, causes)
    if causes:
        meta = obj.get("metadata") or {}
        raise invalid(rt.kind, str(meta.get("name", "")), rt.group, causes)
