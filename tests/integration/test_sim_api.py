"""The emulator's API, driven by the real `kubernetes` client over HTTPS: CRUD, selectors, conflicts,
patches, server-side apply with field ownership, dry runs, validation, subresources and watches."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes.client
import pytest
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.watch import Watch

from orchestrator.sim.server import SimServer


@pytest.fixture
def sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimServer]:
    for var in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    # Controllers off: these tests are about API semantics, and a controller writing status would move
    # resourceVersions under them. Namespace finalization is run by hand where a test needs it.
    with SimServer(clusters=("aws", "gcp"), state_dir=tmp_path / "sim", run_controllers=False) as server:
        yield server


def client_for(sim: SimServer, cluster: str = "aws", token: str | None = None) -> kubernetes.client.ApiClient:
    cfg = kubernetes.client.Configuration()
    cfg.host = sim.endpoint(cluster)
    cfg.ssl_ca_cert = str(sim.ca_path)
    cfg.api_key = {"authorization": f"Bearer {token or sim.token}"}
    return kubernetes.client.ApiClient(cfg)


@pytest.fixture
def api(sim: SimServer) -> Iterator[kubernetes.client.ApiClient]:
    with client_for(sim) as client:
        yield client


def deployment(
    name: str = "web", image: str = "nginx:1.25", replicas: int = 2, **template_annotations: str
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "version": "v1"}, "annotations": template_annotations},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": image,
                            "ports": [{"containerPort": 8080}],
                            "env": [{"name": "A", "value": "1"}],
                        }
                    ]
                },
            },
        },
    }


def error_body(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


# -- discovery -------------------------------------------------------------------------------------
def test_version_and_discovery_name_every_served_group(api: kubernetes.client.ApiClient) -> None:
    version = kubernetes.client.VersionApi(api).get_code()
    assert (version.major, version.minor) == ("1", "30")

    groups = {
        g.name: [v.version for v in g.versions]
        for g in kubernetes.client.ApisApi(api).get_api_versions().groups
    }
    assert groups["apps"] == ["v1"]
    assert groups["autoscaling"] == ["v2"]
    assert groups["policy"] == ["v1"]
    assert groups["networking.istio.io"] == ["v1", "v1beta1"]
    assert groups["security.istio.io"] == ["v1", "v1beta1"]

    core = {r.name for r in kubernetes.client.CoreV1Api(api).get_api_resources().resources}
    assert {"namespaces", "services", "serviceaccounts", "configmaps", "pods", "secrets"} <= core
    apps = {r.name for r in kubernetes.client.AppsV1Api(api).get_api_resources().resources}
    assert {"deployments", "deployments/status", "deployments/scale", "replicasets"} <= apps


# -- create / get / list / update / delete ---------------------------------------------------------
def test_create_get_and_duplicate_and_missing(api: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(api)
    created = core.create_namespaced_config_map(
        "default", {"metadata": {"name": "settings"}, "data": {"a": "1"}}
    )
    assert created.metadata.uid and created.metadata.creation_timestamp and created.metadata.resource_version

    assert core.read_namespaced_config_map("settings", "default").data == {"a": "1"}

    with pytest.raises(ApiException) as dup:
        core.create_namespaced_config_map("default", {"metadata": {"name": "settings"}})
    assert dup.value.status == 409
    assert error_body(dup.value)["reason"] == "AlreadyExists"

    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("nope", "default")
    assert missing.value.status == 404
    body = error_body(missing.value)
    assert (body["kind"], body["reason"], body["message"]) == (
        "Status",
        "NotFound",
        'configmaps "nope" not found',
    )


def test_creating_in_a_missing_namespace_is_not_found(api: kubernetes.client.ApiClient) -> None:
    with pytest.raises(ApiException) as caught:
        kubernetes.client.CoreV1Api(api).create_namespaced_config_map("ghost", {"metadata": {"name": "x"}})
    assert caught.value.status == 404
    assert error_body(caught.value)["message"] == 'namespaces "ghost" not found'


def test_label_and_field_selectors(api: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(api)
    for name, labels in {
        "a": {"env": "prod", "tier": "web"},
        "b": {"env": "staging", "tier": "db"},
        "c": {"env": "dev"},
    }.items():
        core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": labels}})

    def names(**kwargs: str) -> list[str]:
        return [c.metadata.name for c in core.list_namespaced_config_map("default", **kwargs).items]

    assert names(label_selector="env=prod") == ["a"]
    assert names(label_selector="env==prod") == ["a"]
    assert names(label_selector="env!=prod") == ["b", "c"]
    assert names(label_selector="env in (prod, staging)") == ["a", "b"]
    assert names(label_selector="env notin (prod)") == ["b", "c"]
    assert names(label_selector="tier") == ["a", "b"]
    assert names(label_selector="!tier") == ["c"]
    assert names(label_selector="env in (prod,staging),tier!=db") == ["a"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.name!=b", label_selector="env") == ["a", "c"]
    assert [
        c.metadata.name
        for c in core.list_config_map_for_all_namespaces(field_selector="metadata.namespace=default").items
    ] == ["a", "b", "c"]

    with pytest.raises(ApiException) as bad:
        names(field_selector="spec.color=red")
    assert bad.value.status == 400


def test_a_stale_update_is_a_conflict_and_generation_moves_on_spec_changes_only(
    api: kubernetes.client.ApiClient,
) -> None:
    apps = kubernetes.client.AppsV1Api(api)
    first = apps.create_namespaced_deployment("default", deployment())
    assert first.metadata.generation == 1

    fresh = apps.read_namespaced_deployment("web", "default")
    fresh.metadata.labels["team"] = "payments"
    relabelled = apps.replace_namespaced_deployment("web", "default", fresh)
    assert relabelled.metadata.generation == 1
    assert int(relabelled.metadata.resource_version) > int(first.metadata.resource_version)

    relabelled.spec.replicas = 3
    scaled = apps.replace_namespaced_deployment("web", "default", relabelled)
    assert scaled.metadata.generation == 2

    first.spec.replicas = 5  # still carries the first resourceVersion
    with pytest.raises(ApiException) as caught:
        apps.replace_namespaced_deployment("web", "default", first)
    assert caught.value.status == 409
    body = error_body(caught.value)
    assert body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 3


def test_delete_returns_a_status_and_the_object_is_gone(api: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_config_map("default", {"metadata": {"name": "gone"}})
    status = core.delete_namespaced_config_map("gone", "default")
    assert (status["kind"], status["status"], status["details"]["name"]) == ("Status", "Success", "gone")
    with pytest.raises(ApiException) as caught:
        core.delete_namespaced_config_map("gone", "default")
    assert caught.value.status == 404


def test_deleting_a_namespace_terminates_then_removes_it_with_its_contents(
    sim: SimServer, api: kubernetes.client.ApiClient
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "shop"}})
    core.create_namespaced_config_map("shop", {"metadata": {"name": "inside"}})
    terminating = core.delete_namespace("shop")
    assert core.read_namespace("shop").status.phase == "Terminating"
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_config_map("shop", {"metadata": {"name": "late"}})
    assert refused.value.status == 403
    assert terminating["status"]["phase"] == "Terminating"

    sim.cluster("aws").controller.reconcile()

    assert "shop" not in [n.metadata.name for n in core.list_namespace().items]
    assert core.list_namespaced_config_map("shop").items == []


# -- patches ---------------------------------------------------------------------------------------
def test_merge_strategic_and_json_patches(api: kubernetes.client.ApiClient) -> None:
    apps = kubernetes.client.AppsV1Api(api)
    apps.create_namespaced_deployment("default", deployment())

    merged = apps.patch_namespaced_deployment(
        "web",
        "default",
        {"metadata": {"labels": {"team": "a"}}, "spec": {"replicas": 4}},
        _content_type="application/merge-patch+json",
    )
    assert merged.metadata.labels == {"app": "web", "team": "a"}
    assert merged.spec.replicas == 4

    # Strategic merge: containers merge by name, env by name; a JSON merge patch would replace the lists.
    strategic = apps.patch_namespaced_deployment(
        "web",
        "default",
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "app", "env": [{"name": "B", "value": "2"}]},
                            {"name": "sidecar", "image": "envoy:1"},
                        ]
                    }
                }
            }
        },
        _content_type="application/strategic-merge-patch+json",
    )
    containers = strategic.spec.template.spec.containers
    assert [c.name for c in containers] == ["app", "sidecar"]
    assert containers[0].image == "nginx:1.25"
    assert [(e.name, e.value) for e in containers[0].env] == [("A", "1"), ("B", "2")]

    removed = apps.patch_namespaced_deployment(
        "web",
        "default",
        {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}},
        _content_type="application/strategic-merge-patch+json",
    )
    assert [c.name for c in removed.spec.template.spec.containers] == ["app"]

    patched = apps.patch_namespaced_deployment(
        "web",
        "default",
        [
            {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:1.26"},
            {"op": "add", "path": "/metadata/annotations", "value": {"note": "json-patch"}},
        ],
    )
    assert patched.spec.template.spec.containers[0].image == "nginx:1.26"
    assert patched.metadata.annotations["note"] == "json-patch"
    assert patched.metadata.generation == 5  # replicas, sidecar added, sidecar removed, image

    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment(
            "web",
            "default",
            [{"op": "test", "path": "/spec/replicas", "value": 99}],
        )
    assert caught.value.status == 422


@pytest.mark.parametrize(
    ("ops", "status", "says"),
    [
        (
            [{"op": "remove", "path": "/metadata/annotations/nosuch"}],
            422,
            "(remove '/metadata/annotations/nosuch'): member 'annotations' not found",
        ),
        (
            [{"op": "remove", "path": "/metadata/labels/nosuch"}],
            422,
            "can't remove a non-existent object 'nosuch'",
        ),
        ([{"op": "add", "path": "spec/replicas", "value": 2}], 422, "must start with /"),
        ([{"op": "move", "path": "/spec/paused"}], 400, "'from'"),
        ([{"op": "frob", "path": "/spec/replicas"}], 400, "Unknown operation 'frob'"),
    ],
)
def test_a_json_patch_that_does_not_apply_changes_nothing(
    api: kubernetes.client.ApiClient, ops: list[dict[str, object]], status: int, says: str
) -> None:
    apps = kubernetes.client.AppsV1Api(api)
    apps.create_namespaced_deployment("default", deployment())
    before = apps.read_namespaced_deployment("web", "default")
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment("web", "default", ops)
    assert caught.value.status == status
    assert says in json.loads(caught.value.body)["message"]
    after = apps.read_namespaced_deployment("web", "default")
    assert after.metadata.resource_version == before.metadata.resource_version


def test_strategic_merge_patch_is_refused_for_istio_kinds_like_for_any_crd(
    api: kubernetes.client.ApiClient,
) -> None:
    dyn = DynamicClient(api)
    vs = dyn.resources.get(api_version="networking.istio.io/v1", kind="VirtualService")
    vs.create(body=virtual_service(), namespace="default")
    with pytest.raises(Exception) as caught:
        vs.patch(
            name="web",
            namespace="default",
            body={"spec": {"hosts": ["x"]}},
            content_type="application/strategic-merge-patch+json",
        )
    assert getattr(caught.value, "status", None) == 415


# -- server-side apply -----------------------------------------------------------------------------
def virtual_service(weights: tuple[int, int] = (100, 0)) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "hosts": ["web"],
            "http": [
                {
                    "route": [
                        {"destination": {"host": "web", "subset": "stable"}, "weight": weights[0]},
                        {"destination": {"host": "web", "subset": "canary"}, "weight": weights[1]},
                    ]
                }
            ],
        },
    }


def test_server_side_apply_records_managed_fields_and_an_identical_apply_is_a_no_op(
    api: kubernetes.client.ApiClient,
) -> None:
    dyn = DynamicClient(api)
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    body = {**deployment(), "metadata": {**deployment()["metadata"], "namespace": "default"}}

    first = deployments.server_side_apply(body=body, field_manager="orchestrator")
    managed = first.metadata.managedFields
    assert [(m.manager, m.operation) for m in managed] == [("orchestrator", "Apply")]
    fields = managed[0].fieldsV1.to_dict()
    container = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"app"}']
    assert {".", "f:image", "f:name", "f:env", "f:ports"} <= set(container)
    assert 'k:{"name":"A"}' in container["f:env"]
    assert "f:status" not in fields

    again = deployments.server_side_apply(body=body, field_manager="orchestrator")
    assert again.metadata.resourceVersion == first.metadata.resourceVersion

    changed = deployments.server_side_apply(
        body={**body, "spec": {**body["spec"], "replicas": 3}}, field_manager="orchestrator"
    )
    assert changed.metadata.resourceVersion != first.metadata.resourceVersion
    assert changed.metadata.generation == 2


def test_apply_conflicts_with_another_manager_unless_forced(api: kubernetes.client.ApiClient) -> None:
    dyn = DynamicClient(api)
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    body = {**deployment(), "metadata": {**deployment()["metadata"], "namespace": "default"}}
    deployments.server_side_apply(body=body, field_manager="orchestrator")

    # Co-owning a field with the same value is not a conflict.
    same = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 2},
    }
    deployments.server_side_apply(body=same, field_manager="hpa")

    other = {**same, "spec": {"replicas": 7}}
    with pytest.raises(Exception) as caught:
        deployments.server_side_apply(body=other, field_manager="hpa")
    assert getattr(caught.value, "status", None) == 409
    status = json.loads(caught.value.body)  # type: ignore[attr-defined]
    assert status["reason"] == "Conflict"
    assert 'conflict with "orchestrator"' in status["message"]
    assert [c["field"] for c in status["details"]["causes"]] == [".spec.replicas"]

    forced = deployments.server_side_apply(body=other, field_manager="hpa", force_conflicts=True)
    assert forced.spec.replicas == 7
    owners = {m.manager: m.fieldsV1.to_dict() for m in forced.metadata.managedFields}
    assert "f:replicas" in owners["hpa"]["f:spec"]
    assert "f:replicas" not in owners["orchestrator"]["f:spec"]


def test_apply_removes_fields_its_manager_no_longer_names(api: kubernetes.client.ApiClient) -> None:
    dyn = DynamicClient(api)
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    body = deployment()
    body["metadata"]["namespace"] = "default"
    body["metadata"]["labels"]["team"] = "a"
    body["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "envoy:1"})
    deployments.server_side_apply(body=body, field_manager="orchestrator")

    del body["metadata"]["labels"]["team"]
    body["spec"]["template"]["spec"]["containers"].pop()
    applied = deployments.server_side_apply(body=body, field_manager="orchestrator")
    assert applied.metadata.labels.to_dict() == {"app": "web"}
    assert [c.name for c in applied.spec.template.spec.containers] == ["app"]


def test_apply_patch_keeps_fields_of_other_managers(api: kubernetes.client.ApiClient) -> None:
    dyn = DynamicClient(api)
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    body = {**deployment(), "metadata": {**deployment()["metadata"], "namespace": "default"}}
    deployments.server_side_apply(body=body, field_manager="orchestrator")
    kubernetes.client.AppsV1Api(api).patch_namespaced_deployment(
        "web",
        "default",
        {"metadata": {"annotations": {"owner": "someone-else"}}},
        field_manager="kubectl-annotate",
        _content_type="application/merge-patch+json",
    )
    applied = deployments.server_side_apply(body=body, field_manager="orchestrator")
    assert applied.metadata.annotations["owner"] == "someone-else"
    managers = {(m.manager, m.operation) for m in applied.metadata.managedFields}
    assert managers == {("orchestrator", "Apply"), ("kubectl-annotate", "Update")}


def raw(sim: SimServer) -> httpx.Client:
    """A plain HTTP client for what the kubernetes client does not send (raw YAML bodies)."""
    return httpx.Client(
        base_url=sim.endpoint("aws"),
        verify=ssl.create_default_context(cafile=str(sim.ca_path)),
        headers={"Authorization": f"Bearer {sim.token}"},
    )


def test_apply_requires_a_field_manager(sim: SimServer) -> None:
    with raw(sim) as http:
        resp = http.patch(
            "/api/v1/namespaces/default/configmaps/x",
            content=b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}',
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
    assert resp.status_code == 400
    assert "fieldManager" in resp.json()["message"]


def test_apply_accepts_yaml_and_serves_istio_kinds_at_both_versions(
    sim: SimServer, api: kubernetes.client.ApiClient
) -> None:
    yaml_body = (
        "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata:\n  name: web\n"
        "spec:\n  host: web\n  subsets:\n  - name: stable\n    labels: {version: v1}\n"
    )
    with raw(sim) as http:
        resp = http.patch(
            "/apis/networking.istio.io/v1beta1/namespaces/default/destinationrules/web",
            params={"fieldManager": "orchestrator"},
            content=yaml_body.encode(),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
    assert resp.status_code == 201
    assert resp.json()["apiVersion"] == "networking.istio.io/v1beta1"
    dyn = DynamicClient(api)
    v1 = dyn.resources.get(api_version="networking.istio.io/v1", kind="DestinationRule").get(
        name="web", namespace="default"
    )
    assert v1.apiVersion == "networking.istio.io/v1"
    assert v1.spec.subsets[0].labels.version == "v1"


def test_istio_route_lists_are_atomic_for_apply(api: kubernetes.client.ApiClient) -> None:
    dyn = DynamicClient(api)
    vs = dyn.resources.get(api_version="networking.istio.io/v1beta1", kind="VirtualService")
    first = vs.server_side_apply(body=virtual_service((100, 0)), field_manager="orchestrator")
    assert "f:http" in first.metadata.managedFields[0].fieldsV1.to_dict()["f:spec"]
    moved = vs.server_side_apply(body=virtual_service((90, 10)), field_manager="orchestrator")
    assert [d.weight for d in moved.spec.http[0].route] == [90, 10]


# -- dry run, validation, auth ---------------------------------------------------------------------
def test_dry_run_validates_without_persisting(sim: SimServer, api: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(api)
    rv = sim.cluster("aws").store.resource_version
    answered = core.create_namespaced_config_map("default", {"metadata": {"name": "dry"}}, dry_run="All")
    assert answered.metadata.name == "dry"
    assert sim.cluster("aws").store.resource_version == rv
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_config_map("dry", "default")
    assert caught.value.status == 404


def test_an_invalid_deployment_is_422_naming_each_field(api: kubernetes.client.ApiClient) -> None:
    bad = deployment()
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    bad["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    with pytest.raises(ApiException) as caught:
        kubernetes.client.AppsV1Api(api).create_namespaced_deployment("default", bad)
    assert caught.value.status == 422
    body = error_body(caught.value)
    assert body["reason"] == "Invalid"
    assert {c["field"] for c in body["details"]["causes"]} == {
        "spec.template.metadata.labels",
        "spec.template.spec.containers[0].image",
    }


def test_a_wrong_token_is_401_status(sim: SimServer) -> None:
    with client_for(sim, token="wrong") as api, pytest.raises(ApiException) as caught:
        kubernetes.client.CoreV1Api(api).list_namespace()
    assert caught.value.status == 401
    assert error_body(caught.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_an_authenticator_replaces_the_token_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    seen: list[tuple[str, str]] = []

    def authenticator(cluster: str, token: str) -> bool:
        seen.append((cluster, token))
        return token == f"cloud-token-for-{cluster}"

    with SimServer(clusters=("aws", "gcp"), state_dir=tmp_path, authenticator=authenticator) as sim:
        with client_for(sim, "gcp", token="cloud-token-for-gcp") as ok:
            kubernetes.client.CoreV1Api(ok).list_namespace()
        with client_for(sim, "aws", token=sim.token) as refused, pytest.raises(ApiException) as caught:
            kubernetes.client.CoreV1Api(refused).list_namespace()
    assert caught.value.status == 401
    assert ("gcp", "cloud-token-for-gcp") in seen
    assert ("aws", sim.token) in seen


# -- subresources ----------------------------------------------------------------------------------
def test_scale_and_status_subresources(api: kubernetes.client.ApiClient) -> None:
    apps = kubernetes.client.AppsV1Api(api)
    apps.create_namespaced_deployment("default", deployment(replicas=2))

    scale = apps.read_namespaced_deployment_scale("web", "default")
    assert (scale.kind, scale.spec.replicas) == ("Scale", 2)
    apps.patch_namespaced_deployment_scale(
        "web", "default", {"spec": {"replicas": 5}}, _content_type="application/merge-patch+json"
    )
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 5

    # Writes to the main resource leave status alone; writes to /status leave spec alone.
    current = apps.read_namespaced_deployment("web", "default")
    current.spec.replicas = 6
    current.status = kubernetes.client.V1DeploymentStatus(observed_generation=99)
    after_status = apps.replace_namespaced_deployment_status("web", "default", current)
    assert after_status.status.observed_generation == 99
    assert after_status.spec.replicas == 5


# -- watch -----------------------------------------------------------------------------------------
def test_watch_streams_added_modified_and_deleted_from_a_resource_version(
    api: kubernetes.client.ApiClient,
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_config_map("default", {"metadata": {"name": "before", "labels": {"w": "1"}}})
    rv = core.list_namespaced_config_map("default").metadata.resource_version

    def changes() -> None:
        time.sleep(0.3)
        core.create_namespaced_config_map("default", {"metadata": {"name": "w", "labels": {"w": "1"}}})
        core.patch_namespaced_config_map("w", "default", {"data": {"k": "v"}})
        core.create_namespaced_config_map("default", {"metadata": {"name": "unlabelled"}})
        core.delete_namespaced_config_map("w", "default")

    worker = threading.Thread(target=changes)
    worker.start()
    seen = []
    for event in Watch().stream(
        core.list_namespaced_config_map,
        "default",
        label_selector="w=1",
        resource_version=rv,
        timeout_seconds=10,
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 3:
            break
    worker.join()
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


def test_a_watch_without_resource_version_starts_with_the_current_objects(
    api: kubernetes.client.ApiClient,
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_config_map("default", {"metadata": {"name": "one"}})
    events = list(Watch().stream(core.list_namespaced_config_map, "default", timeout_seconds=1))
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "one")]


def test_a_watch_ends_after_timeout_seconds(api: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(api)
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    started = time.monotonic()
    assert (
        list(
            Watch().stream(core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=1)
        )
        == []
    )
    assert 0.9 < time.monotonic() - started < 10


def test_many_concurrent_watches_and_clients(sim: SimServer) -> None:
    clients = [client_for(sim) for _ in range(20)]
    core = kubernetes.client.CoreV1Api(clients[0])
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    results: list[int] = []

    def watch(client: kubernetes.client.ApiClient) -> None:
        events = 0
        for _ in Watch().stream(
            kubernetes.client.CoreV1Api(client).list_namespaced_config_map,
            "default",
            resource_version=rv,
            timeout_seconds=15,
        ):
            events += 1
            if events == 10:
                break
        results.append(events)

    threads = [threading.Thread(target=watch, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for i in range(10):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"cm-{i}"}})
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    assert results == [10] * 20
