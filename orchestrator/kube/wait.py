"""Wait until a Deployment has rolled out, the way `kubectl rollout status` decides it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import OrchestratorError
from orchestrator.kube.client import KubeClient
from orchestrator.kube.resources import RESOURCE_TYPES

DEPLOYMENT = RESOURCE_TYPES[("apps/v1", "Deployment")]


class RolloutFailedError(OrchestratorError):
    def __init__(self, cluster: str, name: str, reason: str) -> None:
        super().__init__(f"cluster {cluster}: Deployment/{name} did not roll out: {reason}")
        self.cluster = cluster
        self.reason = reason


@dataclass(frozen=True)
class DeploymentProgress:
    done: bool
    message: str
    failed_reason: str | None = None


def deployment_progress(deployment: dict[str, Any]) -> DeploymentProgress:
    """kubectl's rollout-status rules, plus ProgressDeadlineExceeded as a failure with its message."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    meta = deployment.get("metadata") or {}
    wanted = int(spec.get("replicas", 1))
    if int(status.get("observedGeneration", 0)) < int(meta.get("generation", 0)):
        return DeploymentProgress(False, "waiting for the controller to observe the new generation")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            detail = condition.get("message") or "progress deadline exceeded"
            return DeploymentProgress(False, detail, failed_reason=f"ProgressDeadlineExceeded: {detail}")
    updated = int(status.get("updatedReplicas", 0))
    total = int(status.get("replicas", 0))
    available = int(status.get("availableReplicas", 0))
    if updated < wanted:
        return DeploymentProgress(False, f"{updated} of {wanted} replicas updated")
    if total > updated:
        return DeploymentProgress(False, f"{total - updated} old replicas pending termination")
    if available < updated:
        return DeploymentProgress(False, f"{available} of {updated} updated replicas available")
    return DeploymentProgress(True, f"{available} of {wanted} replicas available")


def wait_for_deployment(
    client: KubeClient,
    namespace: str,
    name: str,
    *,
    timeout: float = 300.0,
    poll: float = 0.2,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> DeploymentProgress:
    """Poll until rolled out; raises RolloutFailedError on a progress deadline, a timeout or a deletion."""
    deadline = clock() + timeout
    path = DEPLOYMENT.object_path(namespace, name)
    while True:
        deployment = client.get(path)
        if deployment is None:
            raise RolloutFailedError(client.cluster, name, "the Deployment does not exist")
        progress = deployment_progress(deployment)
        if progress.done:
            return progress
        if progress.failed_reason:
            raise RolloutFailedError(client.cluster, name, progress.failed_reason)
        if clock() >= deadline:
            raise RolloutFailedError(
                client.cluster, name, f"timed out after {timeout:.0f}s: {progress.message}"
            )
        sleep(poll)
