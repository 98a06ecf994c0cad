"""Cluster targets: how to reach a cluster, turned into an authenticated kubernetes ApiClient.

The target models load with the configuration; `connect` (and the kubernetes client behind it) loads
only when something connects, so commands that never reach a cluster do not pay for importing it.
"""

from typing import TYPE_CHECKING, Any

from orchestrator.clusters.targets import (
    AksTarget,
    ClusterTarget,
    EksTarget,
    GkeTarget,
    KubeconfigTarget,
    SimTarget,
)

if TYPE_CHECKING:
    from orchestrator.clusters.connect import connect
    from orchestrator.clusters.errors import ClusterConnectionError

__all__ = [
    "AksTarget",
    "ClusterConnectionError",
    "ClusterTarget",
    "EksTarget",
    "GkeTarget",
    "KubeconfigTarget",
    "SimTarget",
    "connect",
]


def __getattr__(name: str) -> Any:
    if name == "connect":
        from orchestrator.clusters.connect import connect

        return connect
    if name == "ClusterConnectionError":
        from orchestrator.clusters.errors import ClusterConnectionError

        return ClusterConnectionError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
