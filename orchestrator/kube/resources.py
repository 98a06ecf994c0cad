"""Where each kind of object lives in the Kubernetes API: its group, version, plural and scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.errors import OrchestratorError


@dataclass(frozen=True)
class ResourceType:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def collection_path(self, namespace: str | None) -> str:
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    def object_path(self, namespace: str | None, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"


_TYPES = [
    ResourceType("v1", "Namespace", "namespaces", namespaced=False),
    ResourceType("v1", "ServiceAccount", "serviceaccounts"),
    ResourceType("v1", "Secret", "secrets"),
    ResourceType("v1", "ConfigMap", "configmaps"),
    ResourceType("v1", "Service", "services"),
    ResourceType("v1", "Pod", "pods"),
    ResourceType("apps/v1", "Deployment", "deployments"),
    ResourceType("apps/v1", "ReplicaSet", "replicasets"),
    ResourceType("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    ResourceType("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
]
for _version in ("v1beta1", "v1"):
    _TYPES += [
        ResourceType(f"networking.istio.io/{_version}", "Gateway", "gateways"),
        ResourceType(f"networking.istio.io/{_version}", "VirtualService", "virtualservices"),
        ResourceType(f"networking.istio.io/{_version}", "DestinationRule", "destinationrules"),
        ResourceType(f"networking.istio.io/{_version}", "ServiceEntry", "serviceentries"),
        ResourceType(f"security.istio.io/{_version}", "PeerAuthentication", "peerauthentications"),
        ResourceType(f"security.istio.io/{_version}", "RequestAuthentication", "requestauthentications"),
        ResourceType(f"security.istio.io/{_version}", "AuthorizationPolicy", "authorizationpolicies"),
    ]
RESOURCE_TYPES: dict[tuple[str, str], ResourceType] = {(t.api_version, t.kind): t for t in _TYPES}

# What pruning looks through: every kind a service's templates may render, in one version each
# (the API server returns an object under every version it serves, so one is enough).
PRUNABLE: list[ResourceType] = [
    RESOURCE_TYPES[key]
    for key in [
        ("v1", "ServiceAccount"),
        ("v1", "Secret"),  # generated per release (render/generators.py): old ones go after promotion
        ("v1", "ConfigMap"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("policy/v1", "PodDisruptionBudget"),
        ("networking.istio.io/v1beta1", "Gateway"),
        ("networking.istio.io/v1beta1", "VirtualService"),
        ("networking.istio.io/v1beta1", "DestinationRule"),
        ("networking.istio.io/v1beta1", "ServiceEntry"),
        ("security.istio.io/v1beta1", "PeerAuthentication"),
        ("security.istio.io/v1beta1", "RequestAuthentication"),
        ("security.istio.io/v1beta1", "AuthorizationPolicy"),
    ]
]


def resource_type(obj: dict[str, Any]) -> ResourceType:
    key = (str(obj.get("apiVersion")), str(obj.get("kind")))
    try:
        return RESOURCE_TYPES[key]
    except KeyError:
        raise OrchestratorError(f"the orchestrator does not know how to apply {key[1]} ({key[0]})") from None


def object_ref(obj: dict[str, Any]) -> tuple[ResourceType, str | None, str]:
    meta = obj.get("metadata") or {}
    kind = resource_type(obj)
    return kind, (meta.get("namespace") if kind.namespaced else None), str(meta.get("name"))
