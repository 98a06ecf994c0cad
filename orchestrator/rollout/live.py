"""What one service really runs in each cluster of an environment: read from the clusters, not the store.

`status` puts this beside what the store recorded. The objects read are the ones the rollout manages (see
`workload.py`): the stable Deployment named after the service, its `-canary` twin, and the `primary` route of
the VirtualService named after the service. Clusters are read in parallel, each with a short deadline, so
one slow or unreachable cluster costs its deadline once and is reported as such instead of hanging the
command.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from orchestrator.config import ClusterConfig
from orchestrator.errors import OrchestratorError
from orchestrator.kube.client import KubeClient
from orchestrator.kube.wait import deployment_progress
from orchestrator.rollout.workload import CANARY_SUFFIX, DEPLOYMENT
from orchestrator.traffic.istio import VIRTUAL_SERVICE, TrafficRoutingError, primary_weights

Connect = Callable[[ClusterConfig], KubeClient]
T = TypeVar("T")


@dataclass(frozen=True)
class LiveWorkload:
    """One live Deployment: the version label and image its pods run, and whether it has rolled out."""

    name: str
    version: str | None
    image: str | None
    replicas: int
    available: int
    ready: bool
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "image": self.image,
            "replicas": self.replicas,
            "available": self.available,
            "ready": self.ready,
            "message": self.message,
        }


@dataclass(frozen=True)
class LiveCluster:
    """What one cluster answered; `error` is set (and nothing else) when it could not be read."""

    cluster: str
    error: str | None = None
    stable: LiveWorkload | None = None
    canary: LiveWorkload | None = None
    stable_weight: int | None = None  # None: no VirtualService, or no `primary` route in it
    canary_weight: int | None = None
    route_problem: str | None = None

    @property
    def reachable(self) -> bool:
        return self.error is None

    @property
    def running(self) -> bool:
        """The service runs here: its stable Deployment exists."""
        return self.stable is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "reachable": self.reachable,
            "error": self.error,
            "running": self.running,
            "stable": self.stable.to_json() if self.stable else None,
            "canary": self.canary.to_json() if self.canary else None,
            "stable_weight": self.stable_weight,
            "canary_weight": self.canary_weight,
            "route_problem": self.route_problem,
        }


def _workload(deployment: dict[str, Any] | None) -> LiveWorkload | None:
    if deployment is None:
        return None
    template = (deployment.get("spec") or {}).get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    containers = (template.get("spec") or {}).get("containers") or []
    progress = deployment_progress(deployment)
    status = deployment.get("status") or {}
    return LiveWorkload(
        name=deployment["metadata"]["name"],
        version=labels.get("version"),
        image=containers[0].get("image") if containers else None,
        replicas=int((deployment.get("spec") or {}).get("replicas", 1)),
        available=int(status.get("availableReplicas", 0)),
        ready=progress.done,
        message=progress.failed_reason or progress.message,
    )


def read_cluster(client: KubeClient, *, namespace: str, service: str) -> LiveCluster:
    """Three GETs: the stable and canary Deployments and the VirtualService."""
    stable = _workload(client.get(DEPLOYMENT.object_path(namespace, service)))
    canary = _workload(client.get(DEPLOYMENT.object_path(namespace, service + CANARY_SUFFIX)))
    vs = client.get(VIRTUAL_SERVICE.object_path(namespace, service))
    stable_weight = canary_weight = None
    problem = None
    if vs is None:
        problem = f"no VirtualService/{service}"
    else:
        try:
            stable_weight, canary_weight = primary_weights(vs, service)
        except TrafficRoutingError as exc:
            problem = str(exc)
    return LiveCluster(
        cluster=client.cluster,
        stable=stable,
        canary=canary,
        stable_weight=stable_weight,
        canary_weight=canary_weight,
        route_problem=problem,
    )


def read_clusters(
    clusters: Sequence[ClusterConfig],
    *,
    namespace: str,
    service: str,
    connect: Connect,
    timeout: float,
) -> dict[str, LiveCluster]:
    """Every cluster read at once; one that has not answered within `timeout` seconds is unreachable."""
    return gather(
        clusters,
        lambda cluster: read_cluster(connect(cluster), namespace=namespace, service=service),
        lambda cluster, error: LiveCluster(cluster=cluster.name, error=error),
        timeout=timeout,
    )


def gather(
    clusters: Sequence[ClusterConfig],
    read: Callable[[ClusterConfig], T],
    failed: Callable[[ClusterConfig, str], T],
    *,
    timeout: float,
) -> dict[str, T]:
    """`read` of every cluster at once, by name; a cluster whose read raised, or has not answered within
    `timeout` seconds, gets `failed(cluster, why)` instead.

    Daemon threads, not a thread pool: a pool's workers are joined when the interpreter exits, so a cluster
    that never answers would hold the command until its own request timeouts ran out.
    """
    answers: dict[str, T] = {}
    lock = threading.Lock()

    def run(cluster: ClusterConfig) -> None:
        try:
            answer = read(cluster)
        except OrchestratorError as exc:
            answer = failed(cluster, str(exc))
        except Exception as exc:  # a failure to read a cluster is reported, never a traceback
            answer = failed(cluster, f"cluster {cluster.name}: {type(exc).__name__}: {exc}")
        with lock:
            answers[cluster.name] = answer

    threads = [threading.Thread(target=run, args=(c,), name=f"live-{c.name}", daemon=True) for c in clusters]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with lock:
        return {
            c.name: answers[c.name]
            if c.name in answers
            else failed(c, f"cluster {c.name} did not answer within {timeout:g}s")
            for c in clusters
        }
