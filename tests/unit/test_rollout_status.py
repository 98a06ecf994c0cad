"""What `status` calls a disagreement between the store's record of a cluster and what the cluster runs."""

from __future__ import annotations

from typing import Any

from orchestrator.rollout.live import LiveCluster, LiveWorkload
from orchestrator.rollout.status import disagreements, same_image, summary
from orchestrator.store.models import Deployment, Release

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def _release(image: str, digest: str | None = None) -> Release:
    return Release(service="api", git_commit="c" * 40, image_ref=image, image_digest=digest)


def _deployment(phase: str, release: Release) -> Deployment:
    return Deployment(service="api", environment="local", phase=phase, release=release)


def _stable(image: str, *, ready: bool = True, version: str = "v1") -> LiveWorkload:
    message = "2 of 2 replicas available" if ready else "0 of 2 updated replicas available"
    return LiveWorkload("api", version, image, 2, 2 if ready else 0, ready, message)


def _recorded(phase: str, stable: int = 100, canary: int = 0) -> dict[str, Any]:
    return {"cluster": "aws", "phase": phase, "stable_weight": stable, "canary_weight": canary}


def test_the_same_digest_from_another_registry_is_the_same_image() -> None:
    release = _release(f"ecr.example.com/addtocloud/api@{DIGEST}", DIGEST)
    assert same_image(release, f"acr.example.com/addtocloud/api@{DIGEST}")
    assert not same_image(release, f"ecr.example.com/addtocloud/api@{OTHER}")
    assert not same_image(release, None)


def test_without_a_digest_repository_and_tag_must_match() -> None:
    release = _release("registry.addtocloud.local/addtocloud/api:demo")
    assert same_image(release, "registry.addtocloud.local/addtocloud/api:demo")
    assert not same_image(release, "registry.addtocloud.local/addtocloud/api:other")


def test_a_cluster_that_agrees_has_no_disagreement() -> None:
    good = _release("r.example.com/api:1")
    live = LiveCluster("aws", stable=_stable("r.example.com/api:1"), stable_weight=100, canary_weight=0)
    assert disagreements(_recorded("Succeeded"), live, _deployment("Succeeded", good), None) == []


def test_an_untouched_cluster_of_a_rolled_back_deployment_is_held_to_the_running_release() -> None:
    good, bad = _release("r.example.com/api:1"), _release("r.example.com/api:2")
    running, latest = _deployment("Succeeded", good), _deployment("RolledBack", bad)
    on_good = LiveCluster("gcp", stable=_stable("r.example.com/api:1"), stable_weight=100, canary_weight=0)
    assert disagreements(_recorded("Pending"), on_good, latest, running) == []
    on_bad = LiveCluster("gcp", stable=_stable("r.example.com/api:2"), stable_weight=100, canary_weight=0)
    assert disagreements(_recorded("Pending"), on_bad, latest, running) == [
        "stable runs r.example.com/api:2, recorded r.example.com/api:1"
    ]


def test_each_kind_of_difference_is_named() -> None:
    release = _release("r.example.com/api:1")
    latest = _deployment("Succeeded", release)
    unready = LiveCluster(
        "aws", stable=_stable("r.example.com/api:1", ready=False), stable_weight=70, canary_weight=30
    )
    assert disagreements(_recorded("Succeeded"), unready, latest, latest) == [
        "Deployment/api is not ready: 0 of 2 updated replicas available",
        "live weights 70/30 (stable/canary), recorded 100/0",
        "the canary carries 30% but Deployment/api-canary is not ready",
    ]
    empty = LiveCluster("aws", route_problem="no VirtualService/api")
    assert disagreements(_recorded("Succeeded"), empty, latest, latest) == [
        "the service is not running here (no Deployment/api)"
    ]
    down = LiveCluster("aws", error="cluster aws is unreachable: connection refused")
    assert disagreements(_recorded("Succeeded"), down, latest, latest) == [
        "unreachable: cluster aws is unreachable: connection refused"
    ]


def test_nothing_expected_where_nothing_was_ever_deployed() -> None:
    first = _deployment("Progressing", _release("r.example.com/api:1"))
    assert disagreements(_recorded("Pending"), LiveCluster("gcp"), first, None) == []


def test_the_summary_says_what_runs() -> None:
    live = LiveCluster("aws", stable=_stable("r.example.com/api:1", version="v9"), stable_weight=100)
    assert summary({"live": live.to_json()}) == "v9 2/2 ready"
    assert summary({"live": LiveCluster("aws").to_json()}) == "not running"
    assert summary({"live": LiveCluster("aws", error="x").to_json()}) == "unreachable"


def test_a_deployment_awaiting_approval_is_held_to_what_ran_before() -> None:
    """Nothing was touched: the clusters run the last good release (or nothing), and that agrees."""
    good, waiting = _release("r.example.com/api:1"), _release("r.example.com/api:2")
    running, latest = _deployment("Succeeded", good), _deployment("AwaitingApproval", waiting)
    on_good = LiveCluster("aws", stable=_stable("r.example.com/api:1"), stable_weight=100, canary_weight=0)
    assert disagreements(_recorded("Pending"), on_good, latest, running) == []
    never = LiveCluster("aws", route_problem="no VirtualService/api")
    assert disagreements(_recorded("Pending"), never, latest, None) == []  # a first release, not started
