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
from orchestrator.kube.client import KubeApiError, KubeClient
from orchestrator.kube.resources import RESOURCE_TYPES
from orchestrator.traffic.base import HeaderMatch

FIELD_MANAGER = "addtocloud-rollout"
PRIMARY_ROUTE = "primary"
MANAGED_PREFIX = "addtocloud-"
VIRTUAL_SERVICE = RESOURCE_TYPES[("networking.istio.io/v1beta1", "VirtualService")]
DESTINATION_RULE = RESOURCE_TYPES[("networking.istio.io/v1beta1", "DestinationRule")]
CONFLICT_RETRIES = 5


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
        return _weights(_primary(vs, self.service))[1]

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
        def change(vs: dict[str, Any]) -> None:
            primary = _primary(vs, self.service)
            if percentage <= 0:
                primary.pop("mirror", None)
                primary.pop("mirrorPercentage", None)
                return
            canary = next(d for d in primary["route"] if d["destination"].get("subset") == "canary")
            primary["mirror"] = copy.deepcopy(canary["destination"])
            primary["mirrorPercentage"] = {"value": float(percentage)}

        return self._modify(self.vs_path, "VirtualService", change)

    def remove_managed_routes(self) -> bool:
        def change(vs: dict[str, Any]) -> None:
            http = vs["spec"].get("http") or []
            http[:] = [r for r in http if not str(r.get("name", "")).startswith(MANAGED_PREFIX)]
            primary = _primary(vs, self.service)
            primary.pop("mirror", None)
            primary.pop("mirrorPercentage", None)

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
        meanwhile the write fails with 409 and we read it afresh. A change that looks like a no-op on the
        remembered copy is checked against a fresh read before we believe it.

        The object is changed in place: it is ours alone (a fresh read, or the answer to our last write,
        taken out of the memory first), and whether the change changed anything is told by its JSON form
        (which is then what we send), cheaper than a deep copy of a VirtualService.
        """
        for _ in range(CONFLICT_RETRIES):
            remembered = self._last_seen.pop(path, None)
            obj = remembered if remembered is not None else self._read(path, kind)
            before = json.dumps(obj)
            change(obj)
            after = json.dumps(obj)
            if after == before:
                if remembered is None:
                    self._last_seen[path] = obj  # unchanged by us: still a fresh read
                    return False
                continue  # confirm against the live object
            try:
                self._last_seen[path] = self.client.replace(
                    path, after.encode(), field_manager=FIELD_MANAGER
                )
                return True
            except KubeApiError as exc:
                if exc.status != 409:
                    raise
        raise TrafficRoutingError(
            f"cluster {self.client.cluster}: {kind}/{self.service} kept changing underneath us "
            f"({CONFLICT_RETRIES} conflicting writes in a row)"
        )


def _primary(vs: dict[str, Any], service: str) -> dict[str, Any]:
    for route in vs.get("spec", {}).get("http") or []:
        if route.get("name") == PRIMARY_ROUTE:
            return route
    raise TrafficRoutingError(f"VirtualService/{service} has no route named {PRIMARY_ROUTE!r} to manage")


def _weights(route: dict[str, Any]) -> tuple[int, int]:
    stable = canary = 0
    for destination in route.get("route") or []:
        if destination["destination"].get("subset") == "canary":
            canary = int(destination.get("weight", 0))
        else:
            stable = int(destination.get("weight", 0))
    return stable, canary
