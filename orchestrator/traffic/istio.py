"""Istio router: stable/canary weights, header routes and mirrors on the service's VirtualService.

Istio's `spec.http` is an atomic list for server-side apply, so applying our view of it would replace routes
other managers own. Like Argo Rollouts, we read the VirtualService, change only the routes we manage (the
`primary` route's weights, and routes we added by name), and write it back with PUT guarded by the
resourceVersion we read: a concurrent change makes the write fail with 409, and we read again and re-apply
our change on top. Every other route and field stays exactly as it was.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from orchestrator.errors import OrchestratorError
from orchestrator.kube.client import KubeClient
from orchestrator.kube.conflicts import retry_conflicts
from orchestrator.kube.resources import RESOURCE_TYPES
from orchestrator.traffic.base import HeaderMatch

FIELD_MANAGER = "addtocloud-rollout"
PRIMARY_ROUTE = "primary"
MANAGED_PREFIX = "addtocloud-"
MIRRORS_ANNOTATION = "addtocloud.io/mirrors"  # our named mirrors: JSON, name → percentage
VIRTUAL_SERVICE = RESOURCE_TYPES[("networking.istio.io/v1beta1", "VirtualService")]
DESTINATION_RULE = RESOURCE_TYPES[("networking.istio.io/v1beta1", "DestinationRule")]


class TrafficRoutingError(OrchestratorError):
    pass


class IstioRouter:
    """Routes of one service in one cluster: VirtualService and DestinationRule both named after it."""

    def __init__(self, client: KubeClient, *, namespace: str, service: str) -> None:
        self.client = client
        self.namespace = namespace
        self.service = service
        self.vs_path = VIRTUAL_SERVICE.object_path(namespace, service)
        self._last_seen: dict[str, dict[str, Any]] = {}  # by path: our last write, or a read it made moot
        self.dr_path = DESTINATION_RULE.object_path(namespace, service)

    # --- weights ---------------------------------------------------------------------------------------

    def current_weight(self) -> int:
        vs = self._read(self.vs_path, "VirtualService")
        return primary_weights(vs, self.service)[1]

    def set_weight(self, canary_weight: int) -> bool:
        if not 0 <= canary_weight <= 100:
            raise TrafficRoutingError(f"weight {canary_weight} is outside 0-100")

        def change(vs: dict[str, Any]) -> None:
            for destination in _primary(vs, self.service)["route"]:
                subset = destination["destination"].get("subset")
                destination["weight"] = canary_weight if subset == "canary" else 100 - canary_weight

        return self._modify(self.vs_path, "VirtualService", change)

    # --- subsets ---------------------------------------------------------------------------------------

    def set_canary_version(self, version: str) -> bool:
        return self._set_subset_version("canary", version)

    def set_stable_version(self, version: str) -> bool:
        return self._set_subset_version("stable", version)

    def subset_versions(self) -> dict[str, str | None]:
        rule = self._read(self.dr_path, "DestinationRule")
        return {s["name"]: (s.get("labels") or {}).get("version") for s in rule["spec"].get("subsets") or []}

    def _set_subset_version(self, subset: str, version: str) -> bool:
        def change(rule: dict[str, Any]) -> None:
            for entry in rule["spec"].get("subsets") or []:
                if entry.get("name") == subset:
                    entry.setdefault("labels", {})["version"] = version
                    return
            raise TrafficRoutingError(
                f"cluster {self.client.cluster}: DestinationRule/{self.service} has no {subset!r} subset"
            )

        return self._modify(self.dr_path, "DestinationRule", change)

    # --- header routes and mirrors (routes we add carry our prefix, so we can find and remove them) ------

    def set_header_route(self, name: str, matches: list[HeaderMatch]) -> bool:
        route_name = MANAGED_PREFIX + name

        def change(vs: dict[str, Any]) -> None:
            http = vs["spec"].setdefault("http", [])
            http[:] = [r for r in http if r.get("name") != route_name]
            if not matches:
                return
            primary = _primary(vs, self.service)
            canary = next(d for d in primary["route"] if d["destination"].get("subset") == "canary")
            route = {
                "name": route_name,
                "match": [{"headers": {m.name: {m.kind: m.value}}} for m in matches],
                "route": [{"destination": copy.deepcopy(canary["destination"]), "weight": 100}],
            }
            http.insert(http.index(primary), route)  # before primary, so the match is tried first

        return self._modify(self.vs_path, "VirtualService", change)

    def set_mirror(self, name: str, percentage: float) -> bool:
        """Mirror `percentage` % of the primary route's requests to the canary under `name` (0 removes it).

        Named mirrors coexist as entries of the route's `mirrors` list (Istio 1.22+: one entry per mirror,
        each with its own percentage). Istio's entries carry no name, so which of them is which is kept in
        an annotation (`addtocloud.io/mirrors`: name → percentage) and the entries we own are rebuilt from
        it, sorted by name; entries that mirror somewhere else belong to another manager and stay.
        """
        if not 0 <= percentage <= 100:
            raise TrafficRoutingError(f"mirror percentage {percentage} is outside 0-100")

        def change(vs: dict[str, Any]) -> None:
            mirrors = _mirror_names(vs)
            if percentage > 0:
                mirrors[name] = float(percentage)
            else:
                mirrors.pop(name, None)
            _write_mirrors(vs, self.service, mirrors)

        return self._modify(self.vs_path, "VirtualService", change)

    def mirrors(self) -> dict[str, float]:
        """Our named mirrors on the live VirtualService: name → percentage."""
        return _mirror_names(self._read(self.vs_path, "VirtualService"))

    def remove_managed_routes(self) -> bool:
        def change(vs: dict[str, Any]) -> None:
            http = vs["spec"].get("http") or []
            http[:] = [r for r in http if not str(r.get("name", "")).startswith(MANAGED_PREFIX)]
            _write_mirrors(vs, self.service, {})

        return self._modify(self.vs_path, "VirtualService", change)

    def forget(self) -> None:
        """Drop what we remember of the objects: the caller has just written them another way (an apply)."""
        self._last_seen.clear()

    # --- read-modify-write -----------------------------------------------------------------------------

    def _read(self, path: str, kind: str) -> dict[str, Any]:
        obj = self.client.get(path)
        if obj is None:
            raise TrafficRoutingError(f"cluster {self.client.cluster}: {kind}/{self.service} does not exist")
        return obj

    def _modify(self, path: str, kind: str, change: Callable[[dict[str, Any]], None]) -> bool:
        """Apply `change` on top of the object and write it back only when that changes it; True if written.

        The object as we last saw it is remembered (the answer to our last write, or a fresh read on which a
        change turned out to be a no-op): the next change is made on it and sent straight away, guarded by
        its resourceVersion, so a canary step costs one request per cluster. If anyone changed the object
        meanwhile the write fails with 409 and the attempt is run again on a fresh read (`retry_conflicts`:
        bounded, with a short jittered backoff), so only our change is re-applied on top of theirs. A change
        that looks like a no-op on the remembered copy is checked against a fresh read before we believe it.

        The object is changed in place: it is ours alone (a fresh read, or the answer to our last write,
        taken out of the memory first), and whether the change changed anything is told by its JSON form
        (which is then what we send), cheaper than a deep copy of a VirtualService.
        """
        return retry_conflicts(
            lambda: self._modify_once(path, kind, change),
            cluster=self.client.cluster,
            what=f"{kind}/{self.service}",
        )

    def _modify_once(self, path: str, kind: str, change: Callable[[dict[str, Any]], None]) -> bool:
        remembered = self._last_seen.pop(path, None)  # out of the memory: a failed write must not leave it
        after = None
        if remembered is not None:
            before = json.dumps(remembered)
            change(remembered)
            after = json.dumps(remembered)
            if after == before:
                after = None  # a no-op on what may be an old copy: only a fresh read can tell
        if after is None:
            obj = self._read(path, kind)
            before = json.dumps(obj)
            change(obj)
            after = json.dumps(obj)
            if after == before:
                self._last_seen[path] = obj  # unchanged by us: still a fresh read
                return False
        self._last_seen[path] = self.client.replace(path, after.encode(), field_manager=FIELD_MANAGER)
        return True


def _primary(vs: dict[str, Any], service: str) -> dict[str, Any]:
    for route in vs.get("spec", {}).get("http") or []:
        if route.get("name") == PRIMARY_ROUTE:
            return route
    raise TrafficRoutingError(f"VirtualService/{service} has no route named {PRIMARY_ROUTE!r} to manage")


def _mirror_names(vs: dict[str, Any]) -> dict[str, float]:
    text = ((vs.get("metadata") or {}).get("annotations") or {}).get(MIRRORS_ANNOTATION)
    if not text:
        return {}
    try:
        names = json.loads(text)
    except ValueError:
        return {}  # someone mangled it: our entries are still found by their destination below
    return {str(k): float(v) for k, v in names.items()} if isinstance(names, dict) else {}


def _write_mirrors(vs: dict[str, Any], service: str, mirrors: dict[str, float]) -> None:
    """Make the primary route's mirror entries to the canary exactly `mirrors`, and the annotation say so."""
    primary = _primary(vs, service)
    canary = next(
        (d["destination"] for d in primary.get("route") or [] if d["destination"].get("subset") == "canary"),
        None,
    )
    if canary is None and mirrors:
        raise TrafficRoutingError(
            f"VirtualService/{service}: the {PRIMARY_ROUTE!r} route has no canary subset"
        )

    def ours(destination: Any) -> bool:
        return (
            isinstance(destination, dict)
            and destination.get("subset") == "canary"
            and (canary is None or destination.get("host") == canary.get("host"))
        )

    kept = [
        m for m in primary.get("mirrors") or [] if not (isinstance(m, dict) and ours(m.get("destination")))
    ]
    kept += [
        {"destination": copy.deepcopy(canary), "percentage": {"value": mirrors[n]}} for n in sorted(mirrors)
    ]
    if kept:
        primary["mirrors"] = kept
    else:
        primary.pop("mirrors", None)
    if ours(primary.get("mirror")):  # the single `mirror` field earlier versions of this router wrote
        primary.pop("mirror", None)
        primary.pop("mirrorPercentage", None)
    metadata = vs.setdefault("metadata", {})
    if mirrors:
        metadata.setdefault("annotations", {})[MIRRORS_ANNOTATION] = json.dumps(mirrors, sort_keys=True)
    elif MIRRORS_ANNOTATION in (metadata.get("annotations") or {}):
        del metadata["annotations"][MIRRORS_ANNOTATION]


def primary_weights(vs: dict[str, Any], service: str) -> tuple[int, int]:
    """(stable, canary) weights of the `primary` route of a VirtualService as read from a cluster."""
    return _weights(_primary(vs, service))


def _weights(route: dict[str, Any]) -> tuple[int, int]:
    stable = canary = 0
    for destination in route.get("route") or []:
        if destination["destination"].get("subset") == "canary":
            canary = int(destination.get("weight", 0))
        else:
            stable = int(destination.get("weight", 0))
    return stable, canary
