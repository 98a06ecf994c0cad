"""The reference estate scaled up for the render benchmark, and the equivalent kustomize estate.

`build_estate` writes, into a folder, 100 pipelines derived from the repository's `pipelines/api.yaml`
(each with its own name, port and replica count), three environments of three clusters each (dev,
staging and prod, in the shape of the repository's staging and prod), and the repository's templates.

`build_kustomize_estate` writes what a kustomize user would keep for the same manifests: per service a
`base/` holding the objects as plain YAML, and per (environment, cluster) an overlay that sets the
namespace and the labels and patches what differs per cluster (replicas, image, environment variables,
hosts, the cross-cloud weights). `expected_objects` says what each overlay must build to, so the
benchmark can check that kustomize and the renderer produce the same objects before comparing times.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestrator.render.manifests import Manifest, RenderedSet

REPO = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("dev", "staging", "prod")
CLOUDS = ("aws", "azure", "gcp")

# The labels that differ per (environment, cluster): a kustomize overlay sets them with `labels:`.
_VARYING_LABELS = ("app.kubernetes.io/version", "addtocloud.io/environment", "addtocloud.io/cluster")


@dataclass(frozen=True)
class Estate:
    root: Path
    services: list[str]
    environments: list[str]
    clusters: dict[str, list[str]]

    @property
    def set_count(self) -> int:
        return len(self.services) * sum(len(c) for c in self.clusters.values())


def service_name(index: int) -> str:
    return f"svc-{index:03d}"


def build_estate(root: Path, services: int = 100) -> Estate:
    """Write pipelines/, environments/ and templates/ of the scaled estate under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "templates", root / "templates")
    (root / "pipelines").mkdir()
    (root / "environments").mkdir()

    names = [service_name(i) for i in range(services)]
    for index, name in enumerate(names):
        _write(root / "pipelines" / f"{name}.yaml", derived_pipeline(index))

    for env in ("staging", "prod"):
        shutil.copy(REPO / "environments" / f"{env}.yaml", root / "environments" / f"{env}.yaml")
    _write(root / "environments" / "dev.yaml", _three_cluster_dev())

    clusters = {
        env: [c["name"] for c in _read(root / "environments" / f"{env}.yaml")["clusters"]]
        for env in ENVIRONMENTS
    }
    return Estate(root=root, services=names, environments=list(ENVIRONMENTS), clusters=clusters)


def derived_pipeline(index: int) -> dict[str, Any]:
    """Service `index`'s pipeline: the repository's `pipelines/api.yaml` with its own name, port, replica
    count, host and gateway."""
    pipeline = copy.deepcopy(_read(REPO / "pipelines" / "api.yaml"))
    name = service_name(index)
    port = 8000 + index
    pipeline["description"] = f"benchmark service {index}, derived from pipelines/api.yaml"
    pipeline["promotion"] = list(ENVIRONMENTS)  # the estate's own path (the repository's adds local ones)
    pipeline["build"]["repository"] = f"addtocloud/{name}"
    pipeline["values"]["port"] = port
    pipeline["values"]["replicas"] = 2 + index % 4
    pipeline["values"]["env"]["PORT"] = str(port)
    pipeline["values"]["publicHost"] = f"{name}.addtocloud.com"
    # Each service its own Gateway for its own host: a hundred services all creating the shared
    # `addtocloud-gateway` would fight over one object (and kustomize refuses such a tree).
    pipeline["values"]["gateway"]["name"] = f"{name}-gateway"
    pipeline["values"]["gateway"]["hosts"] = [f"{name}.addtocloud.com"]
    return pipeline


def _three_cluster_dev() -> dict[str, Any]:
    """dev as the repository has it (its values: one replica, no autoscaling, debug logs), spread over
    the three clouds the way staging is, so that every environment has three clusters."""
    dev = _read(REPO / "environments" / "dev.yaml")
    staging = _read(REPO / "environments" / "staging.yaml")
    clusters = copy.deepcopy(staging["clusters"])
    for cluster in clusters:
        target = cluster["target"]
        target["cluster"] = target["cluster"].replace("staging", "dev")
        if "resourceGroup" in target:
            target["resourceGroup"] = target["resourceGroup"].replace("staging", "dev")
    return {
        "description": "development, the three clouds (benchmark shape)",
        "namespace": dev["namespace"],
        "clusters": clusters,
        "waves": [[c["name"] for c in clusters]],
        "registries": copy.deepcopy(staging["registries"]),
        "values": copy.deepcopy(dev["values"]),
    }


def _read(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, sort_keys=False, default_flow_style=False)


# --- the kustomize estate ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Overlay:
    service: str
    environment: str
    cluster: str
    path: Path  # the folder holding kustomization.yaml


def build_kustomize_estate(
    root: Path, sets: Iterable[RenderedSet], base_environment: str = "prod"
) -> list[Overlay]:
    """Write `<service>/base/` and `<service>/overlays/<env>-<cluster>/` for every rendered set.

    The base is the service's set in the first cluster of `base_environment` (it has every kind),
    without namespace; each overlay patches it into the set the renderer made for its cluster.
    """
    by_service: dict[str, list[RenderedSet]] = {}
    for rendered in sets:
        by_service.setdefault(rendered.service, []).append(rendered)
    overlays: list[Overlay] = []
    for service, service_sets in by_service.items():
        base_set = next(s for s in service_sets if s.environment == base_environment)
        base = [_without_namespace(obj) for obj in base_set.objects]
        service_dir = root / service
        _write_base(service_dir / "base", base)
        for rendered in service_sets:
            folder = service_dir / "overlays" / f"{rendered.environment}-{rendered.cluster}"
            _write_overlay(folder, rendered)
            overlays.append(Overlay(service, rendered.environment, rendered.cluster, folder))
    return overlays


def write_tree(root: Path, overlays: Iterable[Overlay]) -> Path:
    """One kustomization listing every overlay as a resource: the whole estate as one build."""
    resources = [os.path.relpath(o.path, root) for o in overlays]
    top = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}
    _write(root / "kustomization.yaml", top)
    return root


def _without_namespace(obj: Manifest) -> Manifest:
    plain = copy.deepcopy(obj)
    plain["metadata"].pop("namespace", None)
    return plain


def _write_base(folder: Path, base: list[Manifest]) -> None:
    files = []
    for obj in base:
        name = f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        _write(folder / name, obj)
        files.append(name)
    _write(
        folder / "kustomization.yaml",
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": files},
    )


def _find(objects: list[Manifest], kind: str, name: str | None = None) -> Manifest | None:
    for obj in objects:
        if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name):
            return obj
    return None


def _write_overlay(folder: Path, rendered: RenderedSet) -> None:
    """The overlay a person would write: namespace, labels, and patches for what differs per cluster."""
    objects = rendered.objects
    service = rendered.service
    deployment = _find(objects, "Deployment", service)
    assert deployment is not None, f"{service}: no Deployment rendered"
    labels = deployment["metadata"]["labels"]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    patches: list[dict[str, Any]] = []

    # Strategic merge patch: replicas, image, the pod's version label and its environment variables
    # (merged into the base's list by name).
    _write(
        folder / "deployment-patch.yaml",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": service},
            "spec": {
                "replicas": deployment["spec"]["replicas"],
                "template": {
                    "metadata": {"labels": {"version": pod["metadata"]["labels"]["version"]}},
                    "spec": {
                        "containers": [
                            {"name": container["name"], "image": container["image"], "env": container["env"]}
                        ]
                    },
                },
            },
        },
    )
    patches.append({"path": "deployment-patch.yaml"})

    hpa = _find(objects, "HorizontalPodAutoscaler", service)
    hpa_patch: dict[str, Any]
    if hpa is None:  # dev runs without autoscaling: the overlay deletes the base's HPA
        hpa_patch = {"$patch": "delete"}
    else:
        hpa_patch = {
            "spec": {"minReplicas": hpa["spec"]["minReplicas"], "maxReplicas": hpa["spec"]["maxReplicas"]}
        }
    _write(
        folder / "hpa-patch.yaml",
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": service},
            **hpa_patch,
        },
    )
    patches.append({"path": "hpa-patch.yaml"})

    pdb = _find(objects, "PodDisruptionBudget", service)
    assert pdb is not None
    _write(
        folder / "pdb-patch.yaml",
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": service},
            "spec": {"minAvailable": pdb["spec"]["minAvailable"]},
        },
    )
    patches.append({"path": "pdb-patch.yaml"})

    # Istio kinds have no strategic-merge schema in kustomize: lists are replaced whole, so hosts and
    # weights are set with JSON6902 operations at their paths.
    rule = _find(objects, "DestinationRule", service)
    assert rule is not None
    rule_ops = [{"op": "replace", "path": "/spec/host", "value": rule["spec"]["host"]}]
    rule_ops += [
        {"op": "replace", "path": f"/spec/subsets/{i}/labels/version", "value": s["labels"]["version"]}
        for i, s in enumerate(rule["spec"]["subsets"])
    ]
    patches.append(
        _json6902(folder, "destinationrule", "networking.istio.io", "DestinationRule", service, rule_ops)
    )

    inner = _find(objects, "VirtualService", service)
    assert inner is not None
    inner_ops = [
        {"op": "replace", "path": f"/spec/hosts/{i}", "value": h}
        for i, h in enumerate(inner["spec"]["hosts"])
    ]
    for r, route in enumerate(inner["spec"]["http"]):
        for d, destination in enumerate(route["route"]):
            inner_ops.append(
                {
                    "op": "replace",
                    "path": f"/spec/http/{r}/route/{d}/destination/host",
                    "value": destination["destination"]["host"],
                }
            )
    patches.append(
        _json6902(folder, "virtualservice", "networking.istio.io", "VirtualService", service, inner_ops)
    )

    crosscloud = _find(objects, "VirtualService", f"{service}-crosscloud")
    assert crosscloud is not None
    weight_ops = []
    for r, route in enumerate(crosscloud["spec"]["http"]):
        for d, destination in enumerate(route["route"]):
            weight_ops.append(
                {"op": "replace", "path": f"/spec/http/{r}/route/{d}/weight", "value": destination["weight"]}
            )
    patches.append(
        _json6902(
            folder,
            "crosscloud-weights",
            "networking.istio.io",
            "VirtualService",
            f"{service}-crosscloud",
            weight_ops,
        )
    )

    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../../base"],
        "namespace": rendered.namespace,
        # `labels` is kustomize 5's form of commonLabels; without includeSelectors it leaves selectors
        # alone, as the renderer does (commonLabels would also rewrite every selector).
        "labels": [{"pairs": {k: labels[k] for k in _VARYING_LABELS}, "includeTemplates": True}],
        "patches": patches,
    }
    _write(folder / "kustomization.yaml", kustomization)


def _json6902(
    folder: Path, stem: str, group: str, kind: str, name: str, operations: list[dict[str, Any]]
) -> dict[str, Any]:
    (folder / f"{stem}-patch.json").write_text(json.dumps(operations, indent=1), encoding="utf-8")
    return {"path": f"{stem}-patch.json", "target": {"group": group, "kind": kind, "name": name}}


def object_index(objects: Iterable[Manifest]) -> dict[tuple[str, str, str], Manifest]:
    """Objects by (kind, namespace, name): how kustomize output and a rendered set are compared."""
    return {
        (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]): obj for obj in objects
    }
