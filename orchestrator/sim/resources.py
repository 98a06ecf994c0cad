"""The resource types the emulator serves: group, versions, plural, kind, scope and subresources.

One `ResourceType` per group/resource; Istio kinds are served at several versions from one storage,
the way the real API server serves a CRD with several served versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    versions: tuple[str, ...]  # served versions, preferred first
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ("status",)
    categories: tuple[str, ...] = ()
    custom: bool = False  # a CRD: no strategic merge patch, every list atomic

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def storage_key(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    @property
    def preferred_api_version(self) -> str:
        return self.api_version(self.versions[0])


_ISTIO_NET = "networking.istio.io"
_ISTIO_SEC = "security.istio.io"
_ISTIO_VERSIONS = ("v1", "v1beta1")

RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType("", ("v1",), "namespaces", "Namespace", namespaced=False, short_names=("ns",)),
    ResourceType("", ("v1",), "services", "Service", short_names=("svc",), categories=("all",)),
    ResourceType("", ("v1",), "serviceaccounts", "ServiceAccount", short_names=("sa",), subresources=()),
    ResourceType("", ("v1",), "configmaps", "ConfigMap", short_names=("cm",), subresources=()),
    ResourceType("", ("v1",), "secrets", "Secret", subresources=()),
    ResourceType("", ("v1",), "pods", "Pod", short_names=("po",), categories=("all",)),
    ResourceType("", ("v1",), "events", "Event", short_names=("ev",), subresources=()),
    ResourceType(
        "apps",
        ("v1",),
        "deployments",
        "Deployment",
        short_names=("deploy",),
        subresources=("status", "scale"),
        categories=("all",),
    ),
    ResourceType(
        "apps",
        ("v1",),
        "replicasets",
        "ReplicaSet",
        short_names=("rs",),
        subresources=("status", "scale"),
        categories=("all",),
    ),
    ResourceType(
        "autoscaling",
        ("v2",),
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short_names=("hpa",),
        categories=("all",),
    ),
    ResourceType("policy", ("v1",), "poddisruptionbudgets", "PodDisruptionBudget", short_names=("pdb",)),
    ResourceType(
        _ISTIO_NET,
        _ISTIO_VERSIONS,
        "virtualservices",
        "VirtualService",
        short_names=("vs",),
        categories=("istio-io", "networking-istio-io"),
        custom=True,
    ),
    ResourceType(
        _ISTIO_NET,
        _ISTIO_VERSIONS,
        "destinationrules",
        "DestinationRule",
        short_names=("dr",),
        categories=("istio-io", "networking-istio-io"),
        custom=True,
    ),
    ResourceType(
        _ISTIO_NET,
        _ISTIO_VERSIONS,
        "gateways",
        "Gateway",
        short_names=("gw",),
        categories=("istio-io", "networking-istio-io"),
        custom=True,
    ),
    ResourceType(
        _ISTIO_NET,
        _ISTIO_VERSIONS,
        "serviceentries",
        "ServiceEntry",
        short_names=("se",),
        categories=("istio-io", "networking-istio-io"),
        custom=True,
    ),
    ResourceType(
        _ISTIO_SEC,
        _ISTIO_VERSIONS,
        "peerauthentications",
        "PeerAuthentication",
        short_names=("pa",),
        categories=("istio-io", "security-istio-io"),
        custom=True,
    ),
    ResourceType(
        _ISTIO_SEC,
        _ISTIO_VERSIONS,
        "requestauthentications",
        "RequestAuthentication",
        short_names=("ra",),
        categories=("istio-io", "security-istio-io"),
        custom=True,
    ),
    ResourceType(
        _ISTIO_SEC,
        _ISTIO_VERSIONS,
        "authorizationpolicies",
        "AuthorizationPolicy",
        short_names=("ap",),
        categories=("istio-io", "security-istio-io"),
        custom=True,
    ),
)


@dataclass
class ResourceRegistry:
    """Look-ups over RESOURCE_TYPES by URL coordinates and by kind."""

    types: tuple[ResourceType, ...] = RESOURCE_TYPES
    _by_path: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    _by_kind: dict[tuple[str, str], ResourceType] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for rt in self.types:
            for version in rt.versions:
                self._by_path[(rt.group, version, rt.plural)] = rt
            self._by_kind[(rt.group, rt.kind)] = rt

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((group, kind))

    def groups(self) -> dict[str, tuple[str, ...]]:
        """Group name → served versions (preferred first), core group excluded."""
        out: dict[str, tuple[str, ...]] = {}
        for rt in self.types:
            if rt.group:
                out.setdefault(rt.group, rt.versions)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self.types if rt.group == group and version in rt.versions]


REGISTRY = ResourceRegistry()
