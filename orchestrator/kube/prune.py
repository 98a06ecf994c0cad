"""Delete a service's objects that are no longer rendered (what `kubectl apply --prune` does, by label)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orchestrator.kube.client import KubeClient
from orchestrator.kube.resources import PRUNABLE

MANAGED_BY = "app.kubernetes.io/managed-by=addtocloud-orchestrator"


def service_selector(service: str) -> str:
    return f"{MANAGED_BY},app.kubernetes.io/name={service}"


def prune(
    client: KubeClient,
    *,
    service: str,
    namespace: str,
    keep: Iterable[dict[str, Any]],
    also_keep: Iterable[tuple[str, str]] = (),
) -> list[str]:
    """Delete the service's labelled objects of known kinds that are not in `keep`; returns what was deleted.

    `also_keep` names (kind, name) pairs the rollout engine owns outside the rendered set (a canary).
    """
    wanted = {(o["kind"], o["metadata"]["name"]) for o in keep} | set(also_keep)
    deleted = []
    for kind in PRUNABLE:
        for live in client.list(kind.collection_path(namespace), label_selector=service_selector(service)):
            name = live["metadata"]["name"]
            if (kind.kind, name) not in wanted and client.delete(kind.object_path(namespace, name)):
                deleted.append(f"{kind.kind}/{name}")
    return deleted
