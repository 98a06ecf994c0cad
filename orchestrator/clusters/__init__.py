"""Cluster targets: how to reach a cluster, turned into an authenticated kubernetes ApiClient."""

from orchestrator.clusters.connect import connect
from orchestrator.clusters.errors import ClusterConnectionError
from orchestrator.clusters.targets import (
    AksTarget,
    ClusterTarget,
    EksTarget,
    GkeTarget,
    KubeconfigTarget,
    SimTarget,
)

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
