"""Simulated Istio mesh traffic for one cluster, computed from elapsed time (no real requests).

Every VirtualService is an entry point receiving `requests_per_second` plain requests (no special
headers), as is every Service that no VirtualService routes to. A VirtualService's requests take its
first HTTP route that a plain request matches (no `match`, or a match without header/query
conditions), split by destination weight; a destination's subset (from the DestinationRule for its
host) selects pods by labels; ready pods share the traffic equally. Per version, the pods' template
annotations `sim.addtocloud.io/error-rate` (0..1) and `sim.addtocloud.io/latency-ms` set the error
share (answered 500) and the latency added to a 10 ms median (so the templates' default 0 is a healthy
service), and `sim.addtocloud.io/telemetry: "off"` makes a version's sidecars stop reporting (its requests
are still served; its counters stop growing, as when a telemetry pipeline breaks); a destination with no
ready pod answers 503. Destinations whose host is not a Service of
this cluster (another cloud, a ServiceEntry) are not served here and produce no metrics.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from orchestrator.sim.clock import Clock
from orchestrator.sim.metrics import IstioMetrics, Labels
from orchestrator.sim.resources import REGISTRY, ResourceType
from orchestrator.sim.selectors import Requirement, labels_match
from orchestrator.sim.store import Obj, ObjectStore

ERROR_RATE = "sim.addtocloud.io/error-rate"
LATENCY_MS = "sim.addtocloud.io/latency-ms"
ERROR_CODE = "sim.addtocloud.io/error-code"
RPS = "sim.addtocloud.io/rps"
TELEMETRY = "sim.addtocloud.io/telemetry"
BASE_LATENCY_MS = 10.0  # every request's median latency before the annotation adds to it


def _rt(group: str, kind: str) -> ResourceType:
    rt = REGISTRY.by_kind(group, kind)
    assert rt is not None
    return rt


SERVICES = _rt("", "Service")
PODS = _rt("", "Pod")
REPLICASETS = _rt("apps", "ReplicaSet")
VIRTUAL_SERVICES = _rt("networking.istio.io", "VirtualService")
DESTINATION_RULES = _rt("networking.istio.io", "DestinationRule")


@dataclass(frozen=True)
class Flow:
    """A steady stream of requests to one workload version (or to nothing: code 503)."""

    service: str
    namespace: str
    workload: str
    version: str
    app: str
    rate: float  # requests per second
    error_rate: float
    error_code: int
    latency_ms: float
    no_upstream: bool = False  # no ready pod: Envoy answers 503 itself (response flag UH)
    reporting: bool = True  # False: served, but no metrics recorded (telemetry "off")


def _float(annotations: dict[str, str], key: str, default: float, lo: float, hi: float) -> float:
    try:
        value = float(annotations.get(key, default))
    except (TypeError, ValueError):
        return default
    return min(max(value, lo), hi)


def _is_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions") or []
    )


def _plain_request_matches(route: dict[str, Any]) -> bool:
    matches = route.get("match")
    if not matches:
        return True
    return any(
        not (m.get("headers") or m.get("queryParams") or m.get("withoutHeaders") or m.get("sourceLabels"))
        for m in matches
        if isinstance(m, dict)
    )


class MeshTraffic:
    def __init__(
        self, store: ObjectStore, clock: Clock, *, cluster: str, requests_per_second: float = 50.0
    ) -> None:
        self.store = store
        self.clock = clock
        self.cluster = cluster
        self.requests_per_second = requests_per_second
        self.metrics = IstioMetrics()
        self._last: float | None = None
        self._flows: list[Flow] = []
        self._flows_rv = ""
        self._lock = threading.Lock()

    # -- time -------------------------------------------------------------------------------------
    def advance(self) -> None:
        """Account for the requests made since the last call, under the routing in force at that call.

        Routing is recomputed only when the cluster's objects changed (resourceVersion moved), so a
        call every controller tick is cheap; a change takes effect from the next call on.
        """
        with self._lock:
            now = self.clock.now()
            if self._last is not None and now > self._last:
                dt = now - self._last
                for flow in self._flows:
                    if flow.reporting:
                        self._record(flow, flow.rate * dt)
            if self._last is None or now > self._last:
                self._last = now
            rv = self.store.resource_version
            if rv != self._flows_rv:
                self._flows = self.flows()
                self._flows_rv = rv

    def _record(self, flow: Flow, count: float) -> None:
        errors = count * flow.error_rate
        for code, n in (("200", count - errors), (str(flow.error_code), errors)):
            if n > 0:
                self.metrics.observe(self._labels(flow, code), n, flow.latency_ms)

    def _labels(self, flow: Flow, code: str) -> Labels:
        return (
            ("reporter", "destination"),
            ("source_workload", "istio-ingressgateway"),
            ("source_workload_namespace", "istio-system"),
            ("destination_workload", flow.workload),
            ("destination_workload_namespace", flow.namespace),
            ("destination_app", flow.app),
            ("destination_version", flow.version),
            ("destination_service", f"{flow.service}.{flow.namespace}.svc.cluster.local"),
            ("destination_service_name", flow.service),
            ("destination_service_namespace", flow.namespace),
            ("destination_cluster", f"sim-{self.cluster}"),
            ("request_protocol", "http"),
            ("response_code", code),
            ("response_flags", "UH" if flow.no_upstream else "-"),
            ("connection_security_policy", "mutual_tls"),
        )

    def exposition(self) -> bytes:
        self.advance()
        return self.metrics.exposition()

    # -- routing ----------------------------------------------------------------------------------
    def flows(self) -> list[Flow]:
        """The traffic split in force now, one Flow per destination workload version."""
        with self.store.lock:
            services = {
                (s["metadata"]["namespace"], s["metadata"]["name"]): s for s in self.store.scan(SERVICES)[0]
            }
            virtual_services = self.store.scan(VIRTUAL_SERVICES)[0]
            rules: dict[tuple[str, str], list[Obj]] = {}
            for rule in self.store.scan(DESTINATION_RULES)[0]:
                host = self._resolve(
                    str((rule.get("spec") or {}).get("host", "")), rule["metadata"]["namespace"]
                )
                rules.setdefault(host, []).append(rule)
            pods: dict[tuple[str, str, str], list[Obj]] = {}
            for pod in self.store.scan(PODS)[0]:
                for key, value in (pod["metadata"].get("labels") or {}).items():
                    pods.setdefault((pod["metadata"].get("namespace", ""), key, value), []).append(pod)
            replicasets = {rs["metadata"]["uid"]: rs for rs in self.store.scan(REPLICASETS)[0]}
            flows: list[Flow] = []
            routed: set[tuple[str, str]] = set()
            for vs in virtual_services:
                ns = vs["metadata"]["namespace"]
                spec = vs.get("spec") or {}
                for host in spec.get("hosts") or []:
                    routed.add(self._resolve(host, ns))
                rate = _float(vs["metadata"].get("annotations") or {}, RPS, self.requests_per_second, 0, 1e6)
                route = next(
                    (r for r in spec.get("http") or [] if isinstance(r, dict) and _plain_request_matches(r)),
                    None,
                )
                if route is None:
                    continue
                destinations = [d for d in route.get("route") or [] if isinstance(d, dict)]
                weights = [d.get("weight", 100 if len(destinations) == 1 else 0) for d in destinations]
                total = sum(w for w in weights if isinstance(w, int)) or 0
                for dest, weight in zip(destinations, weights, strict=True):
                    if not isinstance(weight, int) or weight <= 0 or total <= 0:
                        continue
                    routed.add(self._resolve(dest.get("destination", {}).get("host", ""), ns))
                    flows += self._destination_flows(
                        dest.get("destination") or {},
                        ns,
                        rate * weight / total,
                        services,
                        rules,
                        pods,
                        replicasets,
                    )
                # `mirror` + `mirrorPercentage`, and Istio 1.22's `mirrors` list (each entry its own share).
                mirrors = [(route.get("mirror"), route.get("mirrorPercentage"))]
                for entry in route.get("mirrors") or []:
                    if isinstance(entry, dict):
                        mirrors.append((entry.get("destination"), entry.get("percentage")))
                for mirror, percentage in mirrors:
                    if not isinstance(mirror, dict):
                        continue
                    share = float((percentage or {}).get("value", 100.0)) / 100.0
                    routed.add(self._resolve(mirror.get("host", ""), ns))
                    flows += self._destination_flows(
                        mirror, ns, rate * share, services, rules, pods, replicasets
                    )
            for (ns, name), svc in services.items():
                if (ns, name) in routed or not (svc.get("spec") or {}).get("selector"):
                    continue
                rate = _float(svc["metadata"].get("annotations") or {}, RPS, self.requests_per_second, 0, 1e6)
                flows += self._destination_flows({"host": name}, ns, rate, services, rules, pods, replicasets)
            return flows

    @staticmethod
    def _resolve(host: str, namespace: str) -> tuple[str, str]:
        """`api`, `api.ns`, `api.ns.svc.cluster.local` → (namespace, service name)."""
        parts = host.split(".")
        if len(parts) >= 2 and (len(parts) == 2 or parts[2] == "svc"):
            return parts[1], parts[0]
        return namespace, parts[0]

    def _destination_flows(
        self,
        dest: dict[str, Any],
        vs_namespace: str,
        rate: float,
        services: dict[Any, Obj],
        rules: dict[tuple[str, str], list[Obj]],
        pods: dict[tuple[str, str, str], list[Obj]],
        replicasets: dict[str, Obj],
    ) -> list[Flow]:
        ns, name = self._resolve(str(dest.get("host", "")), vs_namespace)
        svc = services.get((ns, name))
        if svc is None:
            return []  # a host outside this cluster (another cloud, a ServiceEntry): not served here
        selector: dict[str, str] = dict(((svc or {}).get("spec") or {}).get("selector") or {})
        subset_labels: dict[str, str] = {}
        subset = dest.get("subset")
        if subset:
            for rule in rules.get((ns, name), []):
                for s in (rule.get("spec") or {}).get("subsets") or []:
                    if isinstance(s, dict) and s.get("name") == subset:
                        subset_labels = dict(s.get("labels") or {})
        reqs = [Requirement(k, "=", (str(v),)) for k, v in {**selector, **subset_labels}.items()]
        members = []
        if svc is not None and selector:
            first_key, first_value = next(iter(selector.items()))
            candidates = pods.get((ns, first_key, str(first_value)), [])
            members = [p for p in candidates if labels_match(reqs, p["metadata"].get("labels"))]
        ready = [p for p in members if _is_ready(p)]
        if not ready:
            sample = members[0] if members else None
            return [
                Flow(
                    service=name,
                    namespace=ns,
                    workload=self._workload(sample, replicasets) if sample else "unknown",
                    version=(sample["metadata"].get("labels") or {}).get(
                        "version", subset_labels.get("version", "unknown")
                    )
                    if sample
                    else subset_labels.get("version", "unknown"),
                    app=(sample["metadata"].get("labels") or {}).get("app", name) if sample else name,
                    rate=rate,
                    error_rate=1.0,
                    error_code=503,
                    latency_ms=BASE_LATENCY_MS,
                    no_upstream=True,
                )
            ]
        groups: dict[tuple[str, str], list[Obj]] = {}
        for pod in ready:
            version = (pod["metadata"].get("labels") or {}).get("version", "unknown")
            groups.setdefault((self._workload(pod, replicasets), version), []).append(pod)
        flows = []
        for (workload, version), group in sorted(groups.items()):
            annotations = group[0]["metadata"].get("annotations") or {}
            flows.append(
                Flow(
                    service=name,
                    namespace=ns,
                    workload=workload,
                    version=version,
                    app=(group[0]["metadata"].get("labels") or {}).get("app", name),
                    rate=rate * len(group) / len(ready),
                    error_rate=_float(annotations, ERROR_RATE, 0.0, 0.0, 1.0),
                    error_code=int(_float(annotations, ERROR_CODE, 500, 400, 599)),
                    latency_ms=BASE_LATENCY_MS + _float(annotations, LATENCY_MS, 0.0, 0.0, 3_600_000),
                    reporting=annotations.get(TELEMETRY, "on") != "off",
                )
            )
        return flows

    @staticmethod
    def _workload(pod: Obj, replicasets: dict[str, Obj]) -> str:
        """The Deployment that owns the pod (through its ReplicaSet), else the pod's app label or name."""
        for ref in pod["metadata"].get("ownerReferences") or []:
            rs = replicasets.get(ref.get("uid", ""))
            if rs is not None:
                for owner in rs["metadata"].get("ownerReferences") or []:
                    if owner.get("kind") == "Deployment":
                        return str(owner["name"])
                return str(rs["metadata"]["name"])
        return str((pod["metadata"].get("labels") or {}).get("app", pod["metadata"]["name"]))
