"""Apply a rendered set to one cluster with server-side apply, writing only what changed.

Before each write we read the live object: when it carries the hash of exactly what we are about to apply
and still holds every field we set, the object is left alone. That makes a re-deploy of an unchanged
release cost zero writes, while drift (someone edited a field we own) is still corrected.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.kube.client import KubeClient
from orchestrator.kube.conflicts import retry_conflicts
from orchestrator.kube.resources import RESOURCE_TYPES, object_ref
from orchestrator.kube.stored import as_stored

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
        live, as_stored(stamped)
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
    """Apply one object; returns ("created" | "configured" | "unchanged", the live object).

    A 409 (another manager wrote the object between our read and our write) is retried on a fresh read.
    """
    kind, namespace, name = object_ref(obj)
    path = kind.object_path(namespace, name)
    stamped = with_applied_hash(obj)
    merge = SHARED_KINDS.get(kind.kind)
    return retry_conflicts(
        lambda: _apply_once(client, path, stamped, merge, force=force),
        cluster=client.cluster,
        what=f"{kind.kind}/{name}",
    )


def _apply_once(
    client: KubeClient,
    path: str,
    stamped: dict[str, Any],
    merge: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None,
    *,
    force: bool,
) -> tuple[str, dict[str, Any]]:
    live = client.get(path)
    if live is not None and merge is not None:
        return _update_shared(client, path, live, stamped, merge)
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
    return [r for r in live_routes if is_foreign_route(r, our_names)] + ours


ENGINE_ROUTE_PREFIX = "addtocloud-"  # header routes and mirrors the rollout engine adds during a canary


def is_foreign_route(route: dict[str, Any], our_names: Collection[Any]) -> bool:
    """A live route another manager owns: neither one of ours by name nor one the rollout engine added."""
    name = route.get("name")
    return name not in our_names and not str(name or "").startswith(ENGINE_ROUTE_PREFIX)


def merge_subsets(live_subsets: list[dict[str, Any]], ours: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our rendered subsets replace the live subsets of the same name; subsets others added are kept."""
    our_names = {s.get("name") for s in ours}
    return ours + [s for s in live_subsets if s.get("name") not in our_names]


def _merge_virtual_service(live_spec: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    spec["http"] = merge_http_routes(live_spec.get("http") or [], spec.get("http") or [])
    return spec


def _merge_destination_rule(live_spec: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    spec["subsets"] = merge_subsets(live_spec.get("subsets") or [], spec.get("subsets") or [])
    return spec


# Kinds whose lists other managers add to (Istio's are atomic for server-side apply, so applying ours
# would replace theirs): merged by name and written with PUT on the resourceVersion read.
SHARED_KINDS: dict[str, Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]] = {
    "VirtualService": _merge_virtual_service,
    "DestinationRule": _merge_destination_rule,
}


def _update_shared(
    client: KubeClient,
    path: str,
    live: dict[str, Any],
    stamped: dict[str, Any],
    merge: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]],
) -> tuple[str, dict[str, Any]]:
    """`spec.http` and `spec.subsets` are atomic lists for server-side apply: applying ours would drop other
    managers' entries. Instead read, merge by name, and PUT with the resourceVersion read (a race gets 409,
    and `apply_object` tries again on a fresh read)."""
    wanted = copy.deepcopy(live)
    wanted["metadata"].setdefault("labels", {}).update(stamped["metadata"].get("labels") or {})
    wanted["metadata"].setdefault("annotations", {}).update(stamped["metadata"]["annotations"])
    live_spec = live.get("spec") or {}
    spec = merge(live_spec, copy.deepcopy(stamped.get("spec") or {}))
    wanted["spec"] = {**live_spec, **spec}
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
