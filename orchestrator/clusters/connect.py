"""One entry point: a cluster target in, an authenticated kubernetes ApiClient out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.clusters.targets import (
    AksTarget,
    ClusterTarget,
    EksTarget,
    GkeTarget,
    KubeconfigTarget,
    SimTarget,
)

if TYPE_CHECKING:  # the client loads with the first connection, not with the configuration
    import kubernetes.client


def connect(target: ClusterTarget, *, name: str) -> kubernetes.client.ApiClient:
    """An ApiClient for the cluster called `name`, already proven to reach and authenticate to its API server.

    Raises ClusterConnectionError (naming the cluster and the cause) when the cluster cannot be reached or
    refuses the credentials, and ConfigError when the target itself is wrong (unknown kubeconfig context).
    Tokens that expire (EKS, AKS with Entra ID, GKE) are renewed by the returned client before each request.
    """
    # Each cloud SDK is imported only when its kind of target is used: importing all three costs
    # about a second, which a `sim` user should not pay on every command.
    if isinstance(target, KubeconfigTarget):
        from orchestrator.clusters.kubeconfig import connect_kubeconfig

        return connect_kubeconfig(target, name=name)
    if isinstance(target, EksTarget):
        from orchestrator.clusters.eks import connect_eks

        return connect_eks(target, name=name)
    if isinstance(target, AksTarget):
        from orchestrator.clusters.aks import connect_aks

        return connect_aks(target, name=name)
    if isinstance(target, GkeTarget):
        from orchestrator.clusters.gke import connect_gke

        return connect_gke(target, name=name)
    if isinstance(target, SimTarget):
        from orchestrator.clusters.sim import connect_sim

        return connect_sim(target, name=name)
    raise TypeError(f"not a cluster target: {target!r}")
