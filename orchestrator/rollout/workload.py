"""What one rollout does inside one cluster: deploy, start a canary, promote it, roll it back.

Every operation is idempotent: it compares with what is live and writes only the difference, so a rollout
resumed after a crash can run its current step again without applying anything twice.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from orchestrator.kube.apply import apply_object, apply_objects, ensure_namespace
from orchestrator.kube.client import KubeClient
from orchestrator.kube.live import read_live
from orchestrator.kube.prune import prune
from orchestrator.kube.resources import RESOURCE_TYPES, object_ref
from orchestrator.kube.wait import wait_for_deployment
from orchestrator.render.generators import is_generated, references
from orchestrator.render.manifests import RenderedSet
from orchestrator.traffic.istio import IstioRouter

DEPLOYMENT = RESOURCE_TYPES[("apps/v1", "Deployment")]
CANARY_SUFFIX = "-canary"
INTRODUCED_BY = "addtocloud.io/introduced-by"  # on an object a canary created: that canary's version


@dataclass(frozen=True)
class ClusterState:
    """What one cluster runs for the service, read back from it (never what we meant it to run)."""

    stable_version: str | None  # the stable Deployment's pod template `version` label
    canary_subset: str | None  # the version the DestinationRule's canary subset selects
    canary_weight: int  # the primary route's canary weight
    canary_replicas: int  # the canary Deployment's desired replicas (0 when there is none)

    @property
    def at_rest(self) -> bool:
        """No canary: all traffic on stable, the canary subset on stable pods, no canary pods wanted."""
        return (
            self.canary_weight == 0
            and self.canary_replicas == 0
            and self.canary_subset in (None, self.stable_version)
        )


@dataclass
class ClusterWorkload:
    """One service's rendered set in one cluster, and the client to reach it."""

    client: KubeClient
    rendered: RenderedSet
    wait_timeout: float = 300.0

    @property
    def service(self) -> str:
        return self.rendered.service

    @property
    def namespace(self) -> str:
        return self.rendered.namespace

    @property
    def canary_name(self) -> str:
        return self.service + CANARY_SUFFIX

    @cached_property
    def router(self) -> IstioRouter:
        return IstioRouter(self.client, namespace=self.namespace, service=self.service)

    # --- reading ---------------------------------------------------------------------------------------

    def _rendered(self, kind: str, name: str) -> dict[str, Any]:
        for obj in self.rendered.objects:
            if obj["kind"] == kind and obj["metadata"]["name"] == name:
                return obj
        raise LookupError(f"{kind}/{name} is not in the rendered set of {self.service}")

    def stable_version(self) -> str | None:
        """The version label the live stable Deployment runs, or None when there is none yet."""
        live = self.client.get(DEPLOYMENT.object_path(self.namespace, self.service))
        if live is None:
            return None
        labels = live["spec"]["template"]["metadata"].get("labels") or {}
        return labels.get("version")

    def needs_canary(self) -> bool:
        """False for a first deployment (nothing to compare with) or a version that is already stable."""
        stable = self.stable_version()
        return stable is not None and stable != self.rendered.version

    # --- operations ------------------------------------------------------------------------------------

    def deploy(self) -> int:
        """Apply everything, wait for the Deployment, prune leftovers. Returns the number of writes."""
        result = apply_objects(self.client, self.rendered.objects, namespace=self.namespace)
        self.router.forget()  # the apply may have rewritten the routes
        wait_for_deployment(self.client, self.namespace, self.service, timeout=self.wait_timeout)
        # What the canary Deployment's template reads stays too (after a promotion: this release's).
        canary = self.client.get(DEPLOYMENT.object_path(self.namespace, self.canary_name))
        deleted = prune(
            self.client,
            service=self.service,
            namespace=self.namespace,
            keep=self.rendered.objects,
            also_keep=[("Deployment", self.canary_name), *(references(canary) if canary else ())],
        )
        return result.writes + len(deleted)

    def start_canary(self) -> int:
        """Canary Deployment up and ready, canary subset pointing at it, 0 % traffic to it.

        Of the supporting objects only what the canary alone uses is applied now: its generated
        ConfigMaps and Secrets (named by content, so the stable pods' are untouched) and objects this
        release adds (marked as such, so a rollback removes them). Changes to objects the stable pods
        share (a Service, an HPA, a PodDisruptionBudget...) take effect with the stable, at promotion.
        """
        writes = int(ensure_namespace(self.client, self.namespace))
        for obj in self.rendered.objects:
            if _engine_managed(obj, self.service):
                continue
            if is_generated(obj):
                outcome, _ = apply_object(self.client, obj)
            elif read_live(self.client, obj) is None:
                outcome, _ = apply_object(self.client, _introduced(obj, self.rendered.version))
            else:
                continue
            writes += outcome != "unchanged"
        outcome, _ = apply_object(self.client, canary_deployment(self._rendered("Deployment", self.service)))
        writes += outcome != "unchanged"
        wait_for_deployment(self.client, self.namespace, self.canary_name, timeout=self.wait_timeout)
        writes += self.router.set_weight(0)
        writes += self.router.set_canary_version(self.rendered.version)
        return writes

    def set_weight(self, weight: int) -> int:
        return int(self.router.set_weight(weight))

    def promote(self, scale_down_delay: float = 0.0) -> int:
        """Stable becomes the new version: update it while the canary serves, then move traffic back.

        The canary keeps its pods `scale_down_delay` seconds after traffic left it, so requests routed
        before the mesh saw the change still find them (Argo Rollouts' scaleDownDelaySeconds).
        """
        writes = self.router.set_weight(100) if self._has_canary() else 0
        outcome, _ = apply_object(self.client, self._rendered("Deployment", self.service))
        writes += outcome != "unchanged"
        wait_for_deployment(self.client, self.namespace, self.service, timeout=self.wait_timeout)
        # The rendered DestinationRule and VirtualService are the at-rest state: both subsets on the new
        # version, all traffic on stable, no header routes or mirrors.
        writes += self.router.remove_managed_routes()
        for kind in ("DestinationRule", "VirtualService"):
            outcome, _ = apply_object(self.client, self._rendered(kind, self.service))
            writes += outcome != "unchanged"
        self.router.forget()
        writes += self.router.set_weight(0)
        if scale_down_delay > 0 and self._has_canary():
            time.sleep(scale_down_delay)
        writes += self._scale_canary(0)
        return int(writes) + self.deploy()

    def rollback(self) -> int:
        """All traffic to stable, the canary subset back on stable pods, the canary scaled to zero."""
        writes = 0
        stable = self.stable_version()
        if self.client.get(self.router.vs_path) is not None:
            writes += self.router.remove_managed_routes()
            writes += self.router.set_weight(0)
        if stable is not None and self.client.get(self.router.dr_path) is not None:
            writes += self.router.set_canary_version(stable)
        writes += self._scale_canary(0)
        writes += self._remove_canary_objects()
        return int(writes)

    def _remove_canary_objects(self) -> int:
        """Delete what `start_canary` added for this release and the stable does not use: the canary's
        generated ConfigMaps and Secrets, and objects marked as introduced by this version."""
        live_stable = self.client.get(DEPLOYMENT.object_path(self.namespace, self.service))
        if live_stable is None:
            return 0  # nothing was stable before: this release is all there is
        labels = live_stable["spec"]["template"]["metadata"].get("labels") or {}
        if labels.get("version") == self.rendered.version:
            return 0  # the stable already runs this release (deployed directly, or promoted): all of it stays
        stable_reads = references(live_stable)
        deleted = 0
        for obj in self.rendered.objects:
            if _engine_managed(obj, self.service):
                continue
            kind, namespace, name = object_ref(obj)
            if is_generated(obj):
                if (kind.kind, name) in stable_reads:
                    continue
            else:
                live = read_live(self.client, obj)
                annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
                if annotations.get(INTRODUCED_BY) != self.rendered.version:
                    continue
            deleted += self.client.delete(kind.object_path(namespace, name))
        return deleted

    def observe(self) -> ClusterState:
        """Read back what the cluster runs: for recording an outcome after an action failed part-way."""
        canary = self.client.get(DEPLOYMENT.object_path(self.namespace, self.canary_name))
        subset = None
        if self.client.get(self.router.dr_path) is not None:
            subset = self.router.subset_versions().get("canary")
        return ClusterState(
            stable_version=self.stable_version(),
            canary_subset=subset,
            canary_weight=self.canary_weight(),
            canary_replicas=int((canary or {}).get("spec", {}).get("replicas") or 0),
        )

    def canary_weight(self) -> int:
        if self.client.get(self.router.vs_path) is None:
            return 0
        return self.router.current_weight()

    def _has_canary(self) -> bool:
        return self.client.get(DEPLOYMENT.object_path(self.namespace, self.canary_name)) is not None

    def _scale_canary(self, replicas: int) -> int:
        path = DEPLOYMENT.object_path(self.namespace, self.canary_name)
        live = self.client.get(path)
        if live is None or live["spec"].get("replicas") == replicas:
            return 0
        self.client.merge_patch(path, {"spec": {"replicas": replicas}}, field_manager="addtocloud-rollout")
        return 1


def _engine_managed(obj: dict[str, Any], service: str) -> bool:
    if obj["metadata"]["name"] != service:
        return False
    return obj["kind"] in ("Deployment", "DestinationRule", "VirtualService")


def _introduced(obj: dict[str, Any], version: str) -> dict[str, Any]:
    """`obj` marked as added by the canary of `version`: a rollback of that canary deletes it, and the
    promotion's apply (without the mark, by the same field manager) removes the mark."""
    marked = copy.deepcopy(obj)
    marked["metadata"].setdefault("annotations", {})[INTRODUCED_BY] = version
    return marked


def canary_deployment(stable: dict[str, Any]) -> dict[str, Any]:
    """The canary twin of a rendered Deployment: its own name and instance label (selectors never overlap)."""
    canary = copy.deepcopy(stable)
    name = stable["metadata"]["name"] + CANARY_SUFFIX
    canary["metadata"]["name"] = name
    for labels in (
        canary["metadata"].setdefault("labels", {}),
        canary["spec"]["selector"]["matchLabels"],
        canary["spec"]["template"]["metadata"].setdefault("labels", {}),
    ):
        labels["app.kubernetes.io/instance"] = name
    canary["metadata"]["labels"]["addtocloud.io/track"] = "canary"
    return canary
