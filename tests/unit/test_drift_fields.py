"""What is and is not drift between a committed object and the live one (kube/drift.py)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.kube.apply import APPLIED_HASH
from orchestrator.kube.drift import ABSENT, FieldDrift, object_drift, set_drift


def deployment(replicas: int = 2, image: str = "r.example.com/api:1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "addtocloud", "labels": {"app.kubernetes.io/name": "api"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "api"}},
            "template": {
                "metadata": {
                    "labels": {"app.kubernetes.io/name": "api", "version": "v1"},
                    "annotations": {"sidecar.istio.io/inject": "true"},
                },
                "spec": {
                    "containers": [
                        {
                            "name": "api",
                            "image": image,
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "ports": [{"name": "http", "containerPort": 8080}],
                        }
                    ]
                },
            },
        },
    }


def served(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` as an API server returns it: server metadata, stamps, defaults and status added."""
    live = copy.deepcopy(obj)
    meta = live["metadata"]
    meta.update(
        {
            "uid": "0f0e",
            "resourceVersion": "42",
            "generation": 3,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "managedFields": [{"manager": "addtocloud-orchestrator", "operation": "Apply"}],
        }
    )
    meta.setdefault("annotations", {}).update({APPLIED_HASH: "abc", "deployment.kubernetes.io/revision": "3"})
    if live["kind"] == "Deployment":
        live["spec"]["strategy"] = {"type": "RollingUpdate"}
        container = live["spec"]["template"]["spec"]["containers"][0]
        container["terminationMessagePath"] = "/dev/termination-log"
        container["ports"][0]["protocol"] = "TCP"
        live["status"] = {"replicas": 2, "availableReplicas": 2}
    return live


def hpa(target: str = "api") -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api", "namespace": "addtocloud"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 2,
            "maxReplicas": 10,
        },
    }


def virtual_service(stable: int = 100, canary: int = 0) -> dict[str, Any]:
    def destination(subset: str, weight: int) -> dict[str, Any]:
        return {"destination": {"host": "api", "subset": subset}, "weight": weight}

    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "api", "namespace": "addtocloud"},
        "spec": {
            "hosts": ["api"],
            "http": [
                {"name": "primary", "route": [destination("stable", stable), destination("canary", canary)]}
            ],
        },
    }


def test_server_metadata_defaults_and_status_are_not_drift() -> None:
    committed = deployment()
    assert object_drift(committed, served(committed)).fields == []


def test_a_scaled_deployment_is_drift_naming_spec_replicas() -> None:
    committed = deployment(replicas=2)
    live = served(committed)
    live["spec"]["replicas"] = 5
    [found] = set_drift([committed], {"Deployment/api": live})
    assert found.fields == [FieldDrift("spec.replicas", 2, 5)]
    assert found.lines() == ["Deployment/api spec.replicas: committed 2, live 5"]


def test_replicas_an_hpa_in_the_commit_scales_are_not_drift() -> None:
    committed = [deployment(replicas=2), hpa("api")]
    live = served(committed[0])
    live["spec"]["replicas"] = 7
    found = set_drift(
        committed, {"Deployment/api": live, "HorizontalPodAutoscaler/api": served(committed[1])}
    )
    assert [o.drifted for o in found] == [False, False]
    # An HPA for another workload delegates nothing of this one.
    other = set_drift([deployment(replicas=2), hpa("worker")], {"Deployment/api": live})
    assert other[0].fields == [FieldDrift("spec.replicas", 2, 7)]


def test_a_changed_image_is_named_by_container_name() -> None:
    committed = deployment(image="r.example.com/api:1")
    live = served(deployment(image="r.example.com/api:2"))
    assert [f.describe() for f in object_drift(committed, live).fields] == [
        "spec.template.spec.containers[name=api].image: "
        "committed r.example.com/api:1, live r.example.com/api:2"
    ]


def test_an_env_var_added_or_removed_live_is_drift_by_name() -> None:
    committed = deployment()
    live = served(committed)
    env = live["spec"]["template"]["spec"]["containers"][0]["env"]
    env.insert(0, {"name": "DEBUG", "value": "1"})
    del env[2]  # B
    paths = {(f.path, f.committed is ABSENT, f.live is ABSENT) for f in object_drift(committed, live).fields}
    prefix = "spec.template.spec.containers[name=api].env"
    assert paths == {(f"{prefix}[name=B]", False, True), (f"{prefix}[name=DEBUG]", True, False)}


def test_labels_and_annotations_other_managers_add_are_not_drift_but_changed_ones_are() -> None:
    committed = deployment()
    live = served(committed)
    live["metadata"]["labels"]["team"] = "ops"
    live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
    assert object_drift(committed, live).fields == []
    live["spec"]["template"]["metadata"]["annotations"]["sidecar.istio.io/inject"] = "false"
    [found] = object_drift(committed, live).fields
    assert found.path == "spec.template.metadata.annotations[sidecar.istio.io/inject]"


def test_edited_primary_route_weights_are_drift() -> None:
    committed = virtual_service(100, 0)
    live = served(virtual_service(80, 20))
    assert [f.describe() for f in object_drift(committed, live).fields] == [
        "spec.http[name=primary].route[0].weight: committed 100, live 80",
        "spec.http[name=primary].route[1].weight: committed 0, live 20",
    ]


def test_another_controllers_route_is_not_drift_but_a_leftover_engine_route_is() -> None:
    committed = virtual_service()
    live = served(committed)
    foreign = {"name": "ops-debug", "route": [{"destination": {"host": "debug"}, "weight": 100}]}
    live["spec"]["http"].insert(0, foreign)
    assert object_drift(committed, live).fields == []
    live["spec"]["http"].insert(0, {"name": "addtocloud-canary-header", "route": []})
    [found] = object_drift(committed, live).fields
    assert found.path == "spec.http[name=addtocloud-canary-header]" and found.committed is ABSENT


def test_a_missing_object_and_a_missing_field() -> None:
    committed = deployment()
    assert object_drift(committed, None).missing
    assert object_drift(committed, None).lines() == ["Deployment/api: committed, missing live"]
    live = served(committed)
    del live["spec"]["template"]["spec"]["containers"][0]["ports"]
    [found] = object_drift(committed, live).fields
    assert found.path == "spec.template.spec.containers[name=api].ports" and found.live is ABSENT


def test_empty_committed_values_match_absent_ones_and_true_is_not_one() -> None:
    committed = {"kind": "ConfigMap", "metadata": {"name": "c", "labels": {}}, "data": {"a": "x"}, "x": True}
    live = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "x"}, "x": True}
    assert object_drift(committed, live).fields == []
    assert object_drift(committed, {**live, "x": 1}).fields == [FieldDrift("x", True, 1)]


# --- properties ------------------------------------------------------------------------------------------

keys = st.text("abcdefgh", min_size=1, max_size=4)
scalars = st.one_of(st.integers(-5, 5), st.booleans(), st.text("xyz", min_size=1, max_size=3))
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.dictionaries(keys, children, min_size=1, max_size=3), st.lists(children, min_size=1, max_size=3)
    ),
    max_leaves=12,
)
objects = st.dictionaries(keys, values, min_size=1, max_size=4).map(
    lambda spec: {"apiVersion": "v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": spec}
)


def leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaves(v, (*path, i))]
    return [path]


def add_fields(value: Any, extra: Any) -> Any:
    """`value` with a key the commit does not have added to every mapping (defaults, others' fields)."""
    if isinstance(value, dict):
        return {**{k: add_fields(v, extra) for k, v in value.items()}, "zz-added": extra}
    if isinstance(value, list):
        return [add_fields(v, extra) for v in value]
    return value


@settings(max_examples=200, deadline=None)
@given(objects, scalars)
def test_fields_the_commit_does_not_set_are_never_drift(committed: dict[str, Any], extra: Any) -> None:
    assert object_drift(committed, add_fields(committed, extra)).fields == []


@settings(max_examples=200, deadline=None)
@given(objects, st.data())
def test_any_changed_committed_value_is_drift_at_exactly_that_field(
    committed: dict[str, Any], data: Any
) -> None:
    path = data.draw(st.sampled_from(leaves(committed["spec"])))
    live = copy.deepcopy(committed)
    holder = live["spec"]
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = ["changed"]  # no scalar equals a list
    found = object_drift(committed, live).fields
    assert len(found) == 1 and found[0].live == ["changed"]
