"""The Istio router on an emulated cluster: one request per weight change; other writers respected."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orchestrator.kube.apply import apply_object
from orchestrator.kube.conflicts import CONFLICT_ATTEMPTS, ConflictError
from orchestrator.rollout.engine import DeployRequest, RolloutEngine
from orchestrator.sim.requestlog import LoggedRequest
from orchestrator.sim.rivals import Rival
from orchestrator.sim.server import SimServer
from orchestrator.store.models import Phase
from orchestrator.traffic.istio import IstioRouter
from tests.integration.rollout_fixtures import FOREIGN_ROUTE, VS, live, sim_client, weights


@pytest.fixture
def router(engine: RolloutEngine, sim: SimServer) -> IstioRouter:
    first = DeployRequest(service="api", environment="local", git_commit="a" * 40)
    assert engine.run(engine.create(first)) is Phase.SUCCEEDED  # the api's routes exist, all on stable
    return IstioRouter(sim_client(sim, "aws"), namespace="addtocloud", service="api")


def requests_during(sim: SimServer, action: Any) -> list[LoggedRequest]:
    log = sim.cluster("aws").request_log
    log.reset()
    action()
    return [e for e in log.entries() if e.path == VS]


def test_each_weight_change_is_one_request_even_the_first_after_a_no_op(
    router: IstioRouter, sim: SimServer
) -> None:
    assert [e.method for e in requests_during(sim, lambda: router.set_weight(0))] == ["GET"]  # already 0
    for weight in (10, 25, 50):
        assert [e.method for e in requests_during(sim, lambda w=weight: router.set_weight(w))] == ["PUT"]
    assert weights(sim, "aws") == {"stable": 50, "canary": 50}


def test_a_write_by_another_manager_in_between_is_kept(router: IstioRouter, sim: SimServer) -> None:
    router.set_weight(10)
    vs = live(sim, "aws", VS)
    foreign = copy.deepcopy(FOREIGN_ROUTE)
    vs["spec"]["http"].insert(0, foreign)
    sim_client(sim, "aws").replace(VS, vs, field_manager="ops-team")

    seen = requests_during(sim, lambda: router.set_weight(20))
    # Our remembered copy was stale: the guarded PUT is refused, we read again and write on top.
    assert [(e.method, e.status) for e in seen] == [("PUT", 409), ("GET", 200), ("PUT", 200)]
    assert live(sim, "aws", VS)["spec"]["http"][0] == foreign
    assert weights(sim, "aws") == {"stable": 80, "canary": 20}


def test_after_an_apply_the_router_reads_afresh(router: IstioRouter, sim: SimServer) -> None:
    router.set_weight(30)
    rendered = live(sim, "aws", VS)
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        rendered["metadata"].pop(key, None)
    for destination in rendered["spec"]["http"][0]["route"]:
        destination["weight"] = 0 if destination["destination"]["subset"] == "canary" else 100
    apply_object(sim_client(sim, "aws"), rendered)
    router.forget()
    seen = requests_during(sim, lambda: router.set_weight(0))
    assert [e.method for e in seen] == ["GET"]  # the apply already did it: nothing to write
    assert weights(sim, "aws") == {"stable": 100, "canary": 0}


def primary_route(sim: SimServer) -> dict[str, Any]:
    return next(r for r in live(sim, "aws", VS)["spec"]["http"] if r["name"] == "primary")


def mirrored(sim: SimServer) -> list[tuple[str, str, float]]:
    return [
        (m["destination"]["host"], m["destination"].get("subset", ""), m["percentage"]["value"])
        for m in primary_route(sim).get("mirrors") or []
    ]


def test_named_mirrors_coexist_and_removing_one_leaves_the_other(router: IstioRouter, sim: SimServer) -> None:
    host = primary_route(sim)["route"][0]["destination"]["host"]
    assert router.set_mirror("shadow-a", 10)
    assert router.set_mirror("shadow-b", 30)
    assert router.mirrors() == {"shadow-a": 10.0, "shadow-b": 30.0}
    assert mirrored(sim) == [(host, "canary", 10.0), (host, "canary", 30.0)]

    assert router.set_mirror("shadow-b", 5)  # changing one changes only that one
    assert mirrored(sim) == [(host, "canary", 10.0), (host, "canary", 5.0)]
    assert not router.set_mirror("shadow-b", 5)

    assert router.set_mirror("shadow-a", 0)  # removing one leaves the other
    assert router.mirrors() == {"shadow-b": 5.0}
    assert mirrored(sim) == [(host, "canary", 5.0)]
    assert "mirror" not in primary_route(sim)

    assert router.remove_managed_routes()
    assert router.mirrors() == {}
    assert "mirrors" not in primary_route(sim)
    assert "addtocloud.io/mirrors" not in live(sim, "aws", VS)["metadata"].get("annotations", {})


def test_a_mirror_another_manager_added_stays(router: IstioRouter, sim: SimServer) -> None:
    vs = live(sim, "aws", VS)
    primary = next(r for r in vs["spec"]["http"] if r["name"] == "primary")
    theirs = {"destination": {"host": "recorder.ops.svc.cluster.local"}, "percentage": {"value": 1.0}}
    primary["mirrors"] = [theirs]
    sim_client(sim, "aws").replace(VS, vs, field_manager="ops-team")

    router.set_mirror("shadow", 20)
    assert primary_route(sim)["mirrors"][0] == theirs
    assert len(primary_route(sim)["mirrors"]) == 2
    router.set_mirror("shadow", 0)
    assert primary_route(sim)["mirrors"] == [theirs]


def test_mirrored_requests_reach_the_canary_in_the_mesh(router: IstioRouter, sim: SimServer) -> None:
    router.set_canary_version("v-mirror-target")  # no pods: only a mirror would send anything there
    router.set_mirror("shadow-a", 50)
    router.set_mirror("shadow-b", 20)
    flows = sim.cluster("aws").mesh.flows()
    served = sum(f.rate for f in flows if f.service == "api" and f.version != "v-mirror-target")
    shadowed = sorted(f.rate for f in flows if f.version == "v-mirror-target")
    assert served > 0
    assert shadowed == [pytest.approx(served * 0.2), pytest.approx(served * 0.5)]  # each mirror its own share


def test_a_write_is_retried_a_bounded_number_of_times_then_named(router: IstioRouter, sim: SimServer) -> None:
    def their_change(vs: dict[str, Any], n: int) -> None:
        vs["metadata"].setdefault("annotations", {})["ops.example.com/seen"] = str(n)

    rivals = sim.cluster("aws").rivals
    relentless = rivals.add(Rival(VS, their_change, preempt=CONFLICT_ATTEMPTS + 1))
    try:
        with pytest.raises(ConflictError) as caught:
            router.set_weight(40)
        assert "cluster aws: VirtualService/api kept changing underneath us" in str(caught.value)
        assert len(relentless.writes) == CONFLICT_ATTEMPTS
        seen = [(e.method, e.status) for e in sim.cluster("aws").request_log.entries() if e.path == VS]
        assert seen[-2 * CONFLICT_ATTEMPTS + 1 :] == [("PUT", 409)] + [("GET", 200), ("PUT", 409)] * (
            CONFLICT_ATTEMPTS - 1
        )

        rivals.clear()
        passing = rivals.add(Rival(VS, their_change, preempt=3))  # a storm that lets up on the fourth try
        seen = [(e.method, e.status) for e in requests_during(sim, lambda: router.set_weight(40))]
        assert seen == [("GET", 200), ("PUT", 409)] + [("GET", 200), ("PUT", 409)] * 2 + [
            ("GET", 200),
            ("PUT", 200),
        ]
        assert weights(sim, "aws") == {"stable": 60, "canary": 40}
        annotations = live(sim, "aws", VS)["metadata"]["annotations"]
        assert annotations["ops.example.com/seen"] == str(len(passing.writes)) == "3"  # ours went on top
    finally:
        rivals.clear()
