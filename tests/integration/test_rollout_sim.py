"""Rollouts against three emulated clusters: rolling and canary, idempotence, faults, rollback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import Project
from orchestrator.rollout.engine import DeployRequest, RolloutEngine
from orchestrator.sim.server import SimServer
from orchestrator.store import repository as repo
from orchestrator.store.models import Phase
from tests.integration.rollout_fixtures import (
    CANARY,
    CLUSTERS,
    DEPLOYMENT,
    DR,
    FAST_CANARY,
    estate_with_strategy,
    live,
    sim_client,
    sim_engine,
    weights,
)


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
    # Wave 1 (aws) went ahead; wave 2 failed on gcp. The rollback put aws and azure back on stable, but
    # what gcp serves cannot be read: the deployment is Failed, naming it, until a rollback finishes.
    assert phase is Phase.FAILED
    with sessions() as session:
        deployment = repo.get_deployment(session, deployment_id)
        assert "gcp" in (deployment.message or "")
        assert [(c.cluster, c.phase) for c in deployment.clusters] == [
            ("aws", "RolledBack"),
            ("azure", "RolledBack"),
            ("gcp", "Failed"),
        ]
        events = repo.events_for(session, deployment_id)
        assert [e.cluster for e in events if e.type == "rollback_failed"] == ["gcp"]
        assert [e.data["event"] for e in events if e.type == "phase"][-1] == "rollback_failed"
    for cluster in ("aws", "azure"):
        assert weights(sim, cluster) == {"stable": 100, "canary": 0}
    sim.cluster("gcp").set_down(False)
    # A later abort finishes the rollback.
    assert engine.abort(deployment_id, actor="ops") == ["aws", "azure", "gcp"]
    with sessions() as session:
        assert repo.get_deployment(session, deployment_id).phase == Phase.ABORTED.value
    for cluster in CLUSTERS:
        assert weights(sim, cluster) == {"stable": 100, "canary": 0}
    assert live(sim, "aws", CANARY)["spec"]["replicas"] == 0
    # Wave 2 failed asking gcp which version it runs, before any canary of the wave started.
    assert [sim_client(sim, c).get(CANARY) for c in ("azure", "gcp")] == [None, None]


def test_deploy_completes_through_injected_5xx_and_429(engine: RolloutEngine, sim: SimServer) -> None:
    for cluster in CLUSTERS:
        sim.cluster(cluster).faults.set(error_rate=0.2, throttle_rate=0.2, retry_after_seconds=0)
    phase, _ = deploy(engine, strategy="rolling")
    assert phase is Phase.SUCCEEDED


PAUSED_AT_50 = """strategy:
  canary:
    steps:
      - setWeight: 50
      - pause: {}
      - pause: {}
"""


def test_an_edited_pipeline_changes_nothing_of_a_paused_rollout_and_abort_rolls_back(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer
) -> None:
    root = estate_with_strategy(tmp_path / "estate", PAUSED_AT_50)
    engine = sim_engine(Project(root), sessions, sim)
    assert deploy(engine)[0] is Phase.SUCCEEDED
    phase, deployment_id = deploy(engine, overrides={"replicas": 3})
    assert phase is Phase.PAUSED
    assert weights(sim, "aws") == {"stable": 50, "canary": 50}
    # The plan was frozen when the deployment was created: these edits do not reach it.
    pipeline = root / "pipelines/api.yaml"
    pipeline.write_text(pipeline.read_text().replace("setWeight: 50", "setWeight: 60"))
    (root / "templates/k8s/deployment.yaml.j2").write_text("{{ broken")
    engine = sim_engine(Project(root), sessions, sim)
    engine.approve(deployment_id, actor="ops")
    assert engine.run(deployment_id) is Phase.PAUSED  # the second pause, still at the frozen 50 %
    assert weights(sim, "aws") == {"stable": 50, "canary": 50}
    assert engine.abort(deployment_id, actor="ops") == ["aws"]
    with sessions() as session:
        deployment = repo.get_deployment(session, deployment_id)
        assert deployment.phase == Phase.ABORTED.value
        assert [(c.cluster, c.phase, c.canary_weight) for c in deployment.clusters] == [
            ("aws", "Aborted", 0),
            ("azure", "Pending", 0),
            ("gcp", "Pending", 0),
        ]
        kinds = [(e.type, (e.data or {}).get("event")) for e in repo.events_for(session, deployment_id)]
        assert ("phase", "abort") in kinds and ("control", "abort") in kinds
    for cluster in CLUSTERS:
        assert weights(sim, cluster) == {"stable": 100, "canary": 0}
    assert live(sim, "aws", CANARY)["spec"]["replicas"] == 0


def test_a_canary_past_its_progress_deadline_rolls_back_every_touched_cluster(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer
) -> None:
    """Wave 1 (aws) runs its canary to 100 %; in wave 2 gcp's canary pods never become ready, so its
    Deployment passes its progress deadline in the emulator. The rollout rolls back aws, azure and gcp:
    read back from each, all traffic on the stable (the old version), the canary at 0 replicas."""
    root = estate_with_strategy(tmp_path / "estate", FAST_CANARY)
    engine = sim_engine(Project(root), sessions, sim)
    assert deploy(engine)[0] is Phase.SUCCEEDED
    old = {c: live(sim, c, DEPLOYMENT)["spec"]["template"]["metadata"]["labels"]["version"] for c in CLUSTERS}
    # The next release's pods never become ready in gcp alone, and its deadline there is two seconds.
    local = root / "environments" / "local.yaml"
    text = local.read_text()
    gcp_target = "    target: {type: sim, cluster: gcp}\n"
    assert gcp_target in text
    local.write_text(
        text.replace(
            gcp_target,
            gcp_target + "    values: {progressDeadlineSeconds: 2, sim: {failure: never-ready}}\n",
        )
    )
    engine = sim_engine(Project(root), sessions, sim)
    reported: list[dict[str, Any]] = []
    engine.report = reported.append
    phase, deployment_id = deploy(engine, overrides={"replicas": 3})

    assert phase is Phase.ROLLED_BACK
    with sessions() as session:
        deployment = repo.get_deployment(session, deployment_id)
        assert "gcp" in (deployment.reason or "") and "ProgressDeadlineExceeded" in (deployment.reason or "")
        assert [(c.cluster, c.phase, c.canary_weight) for c in deployment.clusters] == [
            ("aws", "RolledBack", 0),
            ("azure", "RolledBack", 0),
            ("gcp", "RolledBack", 0),
        ]
        events = repo.events_for(session, deployment_id)
        [outcome] = [e for e in events if e.type == "phase" and e.data["event"] == "rolled_back"]
        assert (outcome.data["rolled_back"], outcome.data["failed"]) == (list(CLUSTERS), [])
        assert not [e for e in events if e.type == "rollback_failed"]
        # aws had gone all the way: its wave's last step put 100 % on the canary before wave 2 began.
        # Wave 1 ran to its end (StartCanary, 10 %, pause, 50 %, pause, 100 %); wave 2's StartCanary failed.
        assert [e.step for e in events if e.type == "step_completed"] == [0, 1, 2, 3, 4, 5]
        assert outcome.step == 6
    # So aws served the new release alone before the rollback, which the read-back below undoes.
    last_of_wave_1 = [e for e in reported if e["type"] == "step_completed" and e["step"] == 5]
    assert [e["weights"] for e in last_of_wave_1] == [{"aws": 100}]
    for cluster in CLUSTERS:
        assert weights(sim, cluster) == {"stable": 100, "canary": 0}
        stable = live(sim, cluster, DEPLOYMENT)
        assert stable["spec"]["template"]["metadata"]["labels"]["version"] == old[cluster]
        assert stable["status"]["availableReplicas"] == 2
        assert live(sim, cluster, CANARY)["spec"]["replicas"] == 0
        subsets = {s["name"]: s["labels"]["version"] for s in live(sim, cluster, DR)["spec"]["subsets"]}
        assert subsets == {"stable": old[cluster], "canary": old[cluster]}
