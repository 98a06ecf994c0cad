"""The Istio router on an emulated cluster: one request per weight change; other writers respected."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orchestrator.kube.apply import apply_object
from orchestrator.rollout.engine import DeployRequest, RolloutEngine
from orchestrator.sim.requestlog import LoggedRequest
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
