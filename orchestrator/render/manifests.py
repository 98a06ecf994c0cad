"""A rendered set of manifests for one cluster: stable order, canonical text and a content hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.render.documents import dump_documents

# Objects are applied (and listed) in dependency order: identities and config before workloads,
# workloads before the mesh routing that points at them.
KIND_ORDER: dict[str, int] = {
    kind: index
    for index, kind in enumerate(
        [
            "Namespace",
            "ServiceAccount",
            "Secret",
            "ConfigMap",
            "Service",
            "Deployment",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "Gateway",
            "ServiceEntry",
            "DestinationRule",
            "VirtualService",
            "PeerAuthentication",
            "RequestAuthentication",
            "AuthorizationPolicy",
        ]
    )
}

Manifest = dict[str, Any]


def object_key(obj: Manifest) -> tuple[int, str, str, str]:
    meta = obj.get("metadata") or {}
    kind = str(obj.get("kind", ""))
    return (
        KIND_ORDER.get(kind, len(KIND_ORDER)),
        kind,
        str(meta.get("namespace", "")),
        str(meta.get("name", "")),
    )


def object_id(obj: Manifest) -> str:
    """`Deployment/api` — how objects are named in messages."""
    return f"{obj.get('kind', '?')}/{(obj.get('metadata') or {}).get('name', '?')}"


def canonical_json(objects: Iterable[Manifest]) -> str:
    return json.dumps(list(objects), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(objects: Iterable[Manifest]) -> str:
    return hashlib.sha256(canonical_json(objects).encode()).hexdigest()


@dataclass(frozen=True)
class RenderedSet:
    """Everything one service runs in one cluster of one environment."""

    service: str
    environment: str
    cluster: str
    cloud: str
    namespace: str
    image: str
    version: str
    objects: list[Manifest] = field(default_factory=list)

    @property
    def manifest_hash(self) -> str:
        return content_hash(self.objects)

    def to_yaml(self) -> str:
        """Every object as a YAML document (`---` first), in order: what `render` prints and writes."""
        return dump_documents(self.objects)

    def summary(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "environment": self.environment,
            "cluster": self.cluster,
            "cloud": self.cloud,
            "namespace": self.namespace,
            "image": self.image,
            "version": self.version,
            "hash": self.manifest_hash,
            "objects": [object_id(o) for o in self.objects],
        }


def environment_hash(sets: Iterable[RenderedSet]) -> str:
    """The manifest hash of a whole release in one environment: every cluster's set, in cluster order."""
    digest = hashlib.sha256()
    for rendered in sets:
        digest.update(f"{rendered.cluster}:{rendered.manifest_hash}\n".encode())
    return digest.hexdigest()
