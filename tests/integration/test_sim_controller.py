"""The emulator's deployment controller, on a manual clock: ReplicaSets per template hash, rolling
updates within maxSurge/maxUnavailable, Recreate, scaling to zero, and the failure modes a pod-template
annotation asks for (never ready → ProgressDeadlineExceeded, crash loop → restarts)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from orchestrator.sim.clock import ManualClock
from orchestrator.sim.controller import PODS, REPLICASETS
from orchestrator.sim.server import SimCluster, SimServer


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimServer]:
    with SimServer(
        clusters=("aws",), state_dir=tmp_path, clock=ManualClock(), run_controllers=False, ready_delay=0.5
    ) as server:
        yield server


@pytest.fixture
def cluster(sim: SimServer) -> SimCluster:
    return sim.cluster("aws")


@pytest.fixture
def apps(sim: SimServer) -> Iterator[kubernetes.client.AppsV1Api]:
    cfg = kubernetes.client.Configuration()
    cfg.host = sim.endpoint("aws")
    cfg.ssl_ca_cert = str(sim.ca_path)
    cfg.api_key = {"authorization": f"Bearer {sim.token}"}
    with kubernetes.client.ApiClient(cfg) as client:
        yield kubernetes.client.AppsV1Api(client)


def run(cluster: SimCluster, seconds: float, step: float = 0.1) -> None:
    """Advance the manual clock in steps, one controller pass per step."""
    assert isinstance(cluster.clock, ManualClock)
    for _ in range(round(seconds / step)):
        cluster.clock.advance(step)
        cluster.controller.reconcile()


def deployment(
    replicas: int = 3,
    image: str = "nginx:1.25",
    strategy: dict[str, Any] | None = None,
    deadline: int = 600,
    **annotations: str,
) -> dict[str, Any]:
    return {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": deadline,
            **({"strategy": strategy} if strategy else {}),
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}, "annotations": annotations},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def pods(cluster: SimCluster) -> list[dict[str, Any]]:
    return cluster.store.list_objects(PODS, "default")


def replicasets(cluster: SimCluster) -> dict[str, int]:
    return {
        rs["metadata"]["name"]: rs["spec"]["replicas"]
        for rs in cluster.store.list_objects(REPLICASETS, "default")
    }


def conditions(status: Any) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions or []}


def test_a_deployment_gets_a_replicaset_named_by_template_hash_and_becomes_available(
    cluster: SimCluster, apps: kubernetes.client.AppsV1Api
) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=3))
    run(cluster, 0.2)

    (rs,) = apps.list_namespaced_replica_set("default").items
    pod_hash = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"web-{pod_hash}"
    assert rs.metadata.owner_references[0].kind == "Deployment"
    assert rs.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    listed = kubernetes.client.CoreV1Api(apps.api_client).list_namespaced_pod("default").items
    assert len(listed) == 3
    assert all(p.metadata.name.startswith(f"web-{pod_hash}-") for p in listed)
    assert all(p.status.phase == "Pending" for p in listed)

    early = apps.read_namespaced_deployment("web", "default").status
    assert (early.updated_replicas, early.available_replicas) == (3, None)
    assert conditions(early)["Progressing"] == ("True", "ReplicaSetUpdated")

    run(cluster, 0.5)
    done = apps.read_namespaced_deployment("web", "default").status
    assert (
        done.observed_generation,
        done.replicas,
        done.updated_replicas,
        done.ready_replicas,
        done.available_replicas,
        done.unavailable_replicas,
    ) == (1, 3, 3, 3, 3, None)
    assert conditions(done) == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }


def test_a_rolling_update_stays_within_max_surge_and_max_unavailable(
    cluster: SimCluster, apps: kubernetes.client.AppsV1Api
) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    apps.create_namespaced_deployment("default", deployment(replicas=4, strategy=strategy))
    run(cluster, 1.0)
    apps.patch_namespaced_deployment(
        "web",
        "default",
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.26"}]}}}},
        _content_type="application/strategic-merge-patch+json",
    )

    saw_two_replicasets = False
    for _ in range(60):
        run(cluster, 0.1, step=0.1)
        status = apps.read_namespaced_deployment("web", "default").status
        counts = replicasets(cluster)
        saw_two_replicasets |= sum(1 for n in counts.values() if n) == 2
        assert sum(counts.values()) <= 5, counts
        assert (status.available_replicas or 0) >= 4 or status.observed_generation == 1
    final = apps.read_namespaced_deployment("web", "default")
    assert saw_two_replicasets
    assert final.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert (final.status.updated_replicas, final.status.replicas, final.status.available_replicas) == (
        4,
        4,
        4,
    )
    assert sorted(replicasets(cluster).values()) == [0, 4]
    assert conditions(final.status)["Progressing"] == ("True", "NewReplicaSetAvailable")


def test_going_back_to_an_earlier_template_reuses_its_replicaset(
    cluster: SimCluster, apps: kubernetes.client.AppsV1Api
) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=2))
    run(cluster, 1.0)
    first = set(replicasets(cluster))
    for image in ("nginx:1.26", "nginx:1.25"):
        apps.patch_namespaced_deployment(
            "web",
            "default",
            {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}},
            _content_type="application/strategic-merge-patch+json",
        )
        run(cluster, 3.0)
    counts = replicasets(cluster)
    assert len(counts) == 2
    (active,) = [name for name, n in counts.items() if n]
    assert {active} == first
    assert (
        apps.read_namespaced_deployment("web", "default").metadata.annotations[
            "deployment.kubernetes.io/revision"
        ]
        == "3"
    )


def test_recreate_removes_every_old_pod_before_starting_new_ones(
    cluster: SimCluster, apps: kubernetes.client.AppsV1Api
) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=3, strategy={"type": "Recreate"}))
    run(cluster, 1.0)
    old_hash = next(iter(replicasets(cluster)))
    apps.patch_namespaced_deployment(
        "web",
        "default",
        {"spec": {"template": {"metadata": {"labels": {"app": "web", "rev": "2"}}}}},
        _content_type="application/merge-patch+json",
    )
    for _ in range(30):
        run(cluster, 0.1)
        names = {p["metadata"]["name"].rsplit("-", 1)[0] for p in pods(cluster)}
        assert len(names) <= 1, names  # never old and new pods at once
    assert {p["metadata"]["name"].rsplit("-", 1)[0] for p in pods(cluster)} != {old_hash}
    assert len(pods(cluster)) == 3


def test_scaling_to_zero_removes_every_pod(cluster: SimCluster, apps: kubernetes.client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=3))
    run(cluster, 1.0)
    apps.patch_namespaced_deployment_scale(
        "web", "default", {"spec": {"replicas": 0}}, _content_type="application/merge-patch+json"
    )
    run(cluster, 0.3)
    assert pods(cluster) == []
    status = apps.read_namespaced_deployment("web", "default").status
    assert (status.replicas, status.available_replicas, status.observed_generation) == (None, None, 2)
    assert conditions(status)["Available"] == ("True", "MinimumReplicasAvailable")


def test_never_ready_pods_end_in_progress_deadline_exceeded(
    cluster: SimCluster, apps: kubernetes.client.AppsV1Api
) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=2))
    run(cluster, 1.0)
    apps.patch_namespaced_deployment(
        "web",
        "default",
        {
            "spec": {
                "progressDeadlineSeconds": 10,
                "template": {"metadata": {"annotations": {"sim.addtocloud.io/failure": "never-ready"}}},
            }
        },
        _content_type="application/merge-patch+json",
    )
    run(cluster, 5.0, step=0.5)
    mid = apps.read_namespaced_deployment("web", "default").status
    assert conditions(mid)["Progressing"] == ("True", "ReplicaSetUpdated")
    assert mid.available_replicas == 2  # the old pods keep serving

    run(cluster, 7.0, step=0.5)
    late = apps.read_namespaced_deployment("web", "default").status
    progressing = next(c for c in late.conditions if c.type == "Progressing")
    assert (progressing.status, progressing.reason) == ("False", "ProgressDeadlineExceeded")
    assert progressing.message.endswith("has timed out progressing.")
    assert late.updated_replicas == 1 and late.ready_replicas == 2


def test_crash_looping_pods_restart_and_never_become_ready(
    cluster: SimCluster, apps: kubernetes.client.AppsV1Api
) -> None:
    apps.create_namespaced_deployment(
        "default", deployment(replicas=1, **{"sim.addtocloud.io/failure": "crash-loop"})
    )
    run(cluster, 0.8)
    core = kubernetes.client.CoreV1Api(apps.api_client)
    first = core.list_namespaced_pod("default").items[0].status.container_statuses[0]
    run(cluster, 3.0)
    later = core.list_namespaced_pod("default").items[0].status.container_statuses[0]
    assert later.restart_count > first.restart_count >= 1
    assert later.state.waiting.reason == "CrashLoopBackOff"
    assert later.ready is False
    assert apps.read_namespaced_deployment("web", "default").status.ready_replicas is None


def test_deleting_a_deployment_removes_its_replicasets_and_pods(
    cluster: SimCluster, apps: kubernetes.client.AppsV1Api
) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=2))
    run(cluster, 1.0)
    apps.delete_namespaced_deployment("web", "default")
    assert replicasets(cluster) == {}
    assert pods(cluster) == []


def test_controllers_record_events_that_aggregate_repeats(
    cluster: SimCluster, apps: kubernetes.client.AppsV1Api
) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=2))
    run(cluster, 1.0)
    apps.patch_namespaced_deployment(
        "web",
        "default",
        {"spec": {"template": {"metadata": {"annotations": {"sim.addtocloud.io/failure": "crash-loop"}}}}},
        _content_type="application/merge-patch+json",
    )
    run(cluster, 4.0)
    core = kubernetes.client.CoreV1Api(apps.api_client)

    on_deployment = core.list_namespaced_event("default", field_selector="involvedObject.name=web").items
    scaled = [e.message for e in on_deployment if e.reason == "ScalingReplicaSet"]
    # Events list in name order (their names carry a random suffix), not in time order.
    assert any(m.startswith("Scaled up replica set web-") and m.endswith(" to 2") for m in scaled)
    assert any(m.startswith("Scaled up replica set") and m.endswith(" to 1") for m in scaled)

    backoffs = [e for e in core.list_namespaced_event("default", field_selector="reason=BackOff").items]
    assert backoffs and all(e.type == "Warning" and e.involved_object.kind == "Pod" for e in backoffs)
    assert max(e.count for e in backoffs) >= 2  # one Event per pod, counting its restarts
