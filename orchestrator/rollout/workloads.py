"""What the engine needs from one service in one cluster, and where it gets one.

The engine speaks to clusters only through this small protocol, handed out by a factory: `ClusterWorkload`
over a `KubeClient` in production (and against the emulator), an in-memory double in the state-machine
tests (tests/unit/test_engine_machine.py), so the machine's rules are tested without a Kubernetes API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from orchestrator.config import ClusterConfig
from orchestrator.kube.client import KubeClient
from orchestrator.render.manifests import RenderedSet
from orchestrator.rollout.workload import ClusterWorkload
from orchestrator.traffic.base import HeaderMatch


class Routes(Protocol):
    def set_header_route(self, name: str, matches: list[HeaderMatch]) -> bool: ...

    def set_mirror(self, name: str, percentage: float) -> bool: ...


class Workload(Protocol):
    """One service's rendered set in one cluster; every operation is idempotent and returns its writes."""

    @property
    def rendered(self) -> RenderedSet: ...

    @property
    def router(self) -> Routes: ...

    def needs_canary(self) -> bool: ...

    def deploy(self) -> int: ...

    def start_canary(self) -> int: ...

    def set_weight(self, weight: int) -> int: ...

    def promote(self, scale_down_delay: float = 0.0) -> int: ...

    def rollback(self) -> int: ...

    def canary_weight(self) -> int:
        """The canary's share of traffic as the cluster serves it now (read back after a failure)."""
        ...


WorkloadFactory = Callable[[ClusterConfig, RenderedSet], Workload]
Connector = Callable[[ClusterConfig], KubeClient]


def kube_workloads(connect: Connector) -> WorkloadFactory:
    """Workloads on Kubernetes clusters; one client per cluster for the factory's life."""
    clients: dict[str, KubeClient] = {}

    def workload(cluster: ClusterConfig, rendered: RenderedSet) -> Workload:
        if cluster.name not in clients:
            clients[cluster.name] = connect(cluster)
        return ClusterWorkload(clients[cluster.name], rendered)

    return workload
