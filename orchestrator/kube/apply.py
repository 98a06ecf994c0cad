"""Apply a rendered set to one cluster with server-side apply, writing only what changed.

Before each write we read the live object: when it carries the hash of exactly what we are about to apply
and still holds every field we set, the object is left alone. That makes a re-deploy of an unchanged
release cost zero writes, while drift (someone edited a field we own) is still corrected.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.kube.client import KubeClient
from orchestrator.kube.resources import RESOURCE_TYPES, object_ref

FIELD_MANAGER = "addtocloud-orchestrator"
APPLIED_HASH = "addtocloud.io/applied-hash"


@dataclass
class ApplyResult:
    created: list[str] = field(default_factory=list)
    configured: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return len(self.created) + len(self.configured)


def applied_hash(obj: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def with_applied_hash(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of obj annotated with the hash of its own content (without the annotation)."""
    stamped = copy.deepcopy(obj)
    stamped.setdefault("metadata", {}).setdefault("annotations", {})
    stamped["metadata"]["annotations"].pop(APPLIED_HASH, None)
    digest = applied_hash(stamped)
    stamped["metadata"]["annotations"][APPLIED_HASH] = digest
    return stamped


def contains(live: Any, desired: Any) -> bool:
    """True when every field of `desired` has the same value in `live` (lists compared item by item)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and contains(live[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(contains(a, b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)


def is_current(live: dict[str, Any] | None, stamped: dict[str, Any]) -> bool:
    if live is None:
        return False
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    return annotations.get(APPLIED_HASH) == stamped["metadata"]["annotations"][APPLIED_HASH] and contains(
        live, stamped
    )


def ensure_namespace(client: KubeClient, namespace: str) -> bool:
    """Create the namespace when missing; True when it was created."""
    kind = RESOURCE_TYPES[("v1", "Namespace")]
    if client.get(kind.object_path(None, namespace)) is not None:
        return False
    client.apply(
        kind.object_path(None, namespace),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        field_manager=FIELD_MANAGER,
    )
    return True


def apply_object(
    client: KubeClient, obj: dict[str, Any], *, force: bool = True
) -> tuple[str, dict[str, Any]]:
    """Apply one object; returns ("created" | "configured" | "unchanged", the live object)."""
    kind, namespace, name = object_ref(obj)
    path = kind.object_path(namespace, name)
    stamped = with_applied_hash(obj)
    live = client.get(path)
    if live is not None and kind.kind == "VirtualService":
        return _update_virtual_service(client, path, live, stamped)
    if is_current(live, stamped):
        assert live is not None
        return "unchanged", live
    result = client.apply(path, stamped, field_manager=FIELD_MANAGER, force=force)
    return ("created" if live is None else "configured"), result


def merge_http_routes(live_routes: list[dict[str, Any]], ours: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our rendered routes replace the live routes of the same name; routes others added are kept, first.

    Istio tries routes in order, and other managers add specific matches (a header route, a fault) that
    must stay ahead of our catch-all routes to keep working. Header routes and mirrors the rollout engine
    added (named `addtocloud-…`) are not part of the rendered state and are dropped.
    """
    our_names = {r.get("name") for r in ours}
    foreign = [
        r
        for r in live_routes
        if r.get("name") not in our_names and not str(r.get("name", "")).startswith("addtocloud-")
    ]
    return foreign + ours


def _update_virtual_service(
    client: KubeClient, path: str, live: dict[str, Any], stamped: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """`spec.http` is an atomic list for server-side apply: applying ours would drop other managers' routes.
    Instead read, merge by route name, and PUT with the resourceVersion read (a race gets 409)."""
    wanted = copy.deepcopy(live)
    wanted["metadata"].setdefault("labels", {}).update(stamped["metadata"].get("labels") or {})
    wanted["metadata"].setdefault("annotations", {}).update(stamped["metadata"]["annotations"])
    spec = copy.deepcopy(stamped.get("spec") or {})
    spec["http"] = merge_http_routes(live.get("spec", {}).get("http") or [], spec.get("http") or [])
    wanted["spec"] = {**(live.get("spec") or {}), **spec}
    if wanted == live:
        return "unchanged", live
    return "configured", client.replace(path, wanted, field_manager=FIELD_MANAGER)


def apply_objects(client: KubeClient, objects: Iterable[dict[str, Any]], *, namespace: str) -> ApplyResult:
    """Apply objects in the order given (rendered sets come in dependency order)."""
    result = ApplyResult()
    if ensure_namespace(client, namespace):
        result.created.append(f"Namespace/{namespace}")
    for obj in objects:
        outcome, _ = apply_object(client, obj)
        getattr(result, outcome).append(f"{obj['kind']}/{obj['metadata']['name']}")
    return result
