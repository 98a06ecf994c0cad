"""Rollouts against three emulated clusters: rolling and canary, idempotence, faults, rollback."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from orchestrator.rollout.engine import DeployRequest, RolloutEngine
from orchestrator.sim.server import SimServer
from orchestrator.store import repository as repo
from orchestrator.store.models import Phase
from tests.integration.rollout_fixtures import CANARY, CLUSTERS, DEPLOYMENT, live, weights


def deploy(engine: RolloutEngine, **kwargs: Any) -> tuple[Phase, Any]:
    request = DeployRequest(service="api", environment="local", git_commit="a" * 40, **kwargs)
    deployment_id = engine.create(request)
    return engine.run(deployment_id), deployment_id


def writes(sim: SimServer) -> int:
    return sum(len(sim.cluster(c).request_log.writes()) for c in CLUSTERS)


def test_rolling_deploy_reaches_every_cluster_and_a_repeat_writes_nothing(
    engine: RolloutEngine, sim: SimServer, sessions: sessionmaker[Session]
) -> None:
    phase, deployment_id = deploy(engine, strategy="rolling")
    assert phase is Phase.SUCCEEDED
    for cluster in CLUSTERS:
        status = live(sim, cluster, DEPLOYMENT)["status"]
        assert status["availableReplicas"] == 2
    with sessions() as session:
        events = [e.type for e in repo.events_for(session, deployment_id)]
    assert events.count("step_completed") == 2  # two waves: [aws], [azure, gcp]
    for cluster in CLUSTERS:
        sim.cluster(cluster).request_log.reset()
    phase, _ = deploy(engine, strategy="rolling")
    assert phase is Phase.SUCCEEDED
    assert writes(sim) == 0


def test_canary_shifts_weights_then_promotes(engine: RolloutEngine, sim: SimServer) -> None:
    assert deploy(engine)[0] is Phase.SUCCEEDED  # first release: nothing to compare, deployed directly
    old_version = live(sim, "aws", DEPLOYMENT)["spec"]["template"]["metadata"]["labels"]["version"]
    phase, _ = deploy(engine, overrides={"env": {"FEATURE": "on"}})
    assert phase is Phase.SUCCEEDED
    for cluster in CLUSTERS:
        version = live(sim, cluster, DEPLOYMENT)["spec"]["template"]["metadata"]["labels"]["version"]
        assert version != old_version
        assert weights(sim, cluster) == {"stable": 100, "canary": 0}
        assert live(sim, cluster, CANARY)["spec"]["replicas"] == 0


def test_one_cluster_down_fails_naming_it_and_leaves_stable(
    engine: RolloutEngine, sim: SimServer, sessions: sessionmaker[Session]
) -> None:
    assert deploy(engine)[0] is Phase.SUCCEEDED
    sim.cluster("gcp").set_down(True)
    phase, deployment_id = deploy(engine, overrides={"replicas": 3})
    assert phase in (Phase.ROLLED_BACK, Phase.FAILED)
    with sessions() as session:
        deployment = repo.get_deployment(session, deployment_id)
        assert "gcp" in (deployment.message or "")
    sim.cluster("gcp").set_down(False)
    for cluster in ("aws", "azure"):
        assert weights(sim, cluster) == {"stable": 100, "canary": 0}


def test_deploy_completes_through_injected_5xx_and_429(engine: RolloutEngine, sim: SimServer) -> None:
    for cluster in CLUSTERS:
        sim.cluster(cluster).faults.set(error_rate=0.2, throttle_rate=0.2, retry_after_seconds=0)
    phase, _ = deploy(engine, strategy="rolling")
    assert phase is Phase.SUCCEEDED
