"""Canary rollouts with health gates on the emulated mesh: promotion, automatic rollback, manual control."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import Project
from orchestrator.errors import ConfigError
from orchestrator.rollout.engine import DeployRequest, RolloutEngine
from orchestrator.sim.server import SimServer
from orchestrator.store import repository as repo
from orchestrator.store.models import Phase
from orchestrator.store.repository import DeploymentConflictError
from tests.integration.rollout_fixtures import (
    CANARY,
    CLUSTERS,
    DEPLOYMENT,
    DR,
    FOREIGN_ROUTE,
    VS,
    estate_with_strategy,
    live,
    sim_client,
    sim_engine,
    weights,
)

GATED = """strategy:
  canary:
    steps:
      - setWeight: 20
      - analysis:
          templates:
            - templateName: request-success-rate
      - setWeight: 50
      - pause: {duration: 0.2s}
"""
UNTIL_APPROVED = """strategy:
  canary:
    steps:
      - setWeight: 30
      - pause: {}
      - setWeight: 60
"""


def make_engine(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer, strategy: str
) -> RolloutEngine:
    return sim_engine(Project(estate_with_strategy(tmp_path / "gated", strategy)), sessions, sim)


def request(**kwargs: Any) -> DeployRequest:
    return DeployRequest(service="api", environment="local", git_commit="b" * 40, **kwargs)


def stable_everywhere(sim: SimServer) -> None:
    for cluster in CLUSTERS:
        assert weights(sim, cluster) == {"stable": 100, "canary": 0}
        stable = live(sim, cluster, DEPLOYMENT)["spec"]["template"]["metadata"]["labels"]["version"]
        subsets = {s["name"]: s["labels"]["version"] for s in live(sim, cluster, DR)["spec"]["subsets"]}
        assert subsets["canary"] == stable  # the canary subset selects stable pods: no canary traffic
        canary = sim_client(sim, cluster).get(CANARY)
        assert canary is None or canary["spec"]["replicas"] == 0


def first_release(engine: RolloutEngine) -> None:
    assert engine.run(engine.create(request())) is Phase.SUCCEEDED


def test_healthy_canary_is_promoted_with_measurements_recorded(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer
) -> None:
    engine = make_engine(tmp_path, sessions, sim, GATED)
    first_release(engine)
    deployment_id = engine.create(request(overrides={"env": {"RELEASE": "2"}}))
    assert engine.run(deployment_id) is Phase.SUCCEEDED
    with sessions() as session:
        measurements = [e for e in repo.events_for(session, deployment_id) if e.type == "measurement"]
    assert measurements
    assert all(e.data and e.data["phase"] in ("Successful", "Error") for e in measurements)
    assert {e.cluster for e in measurements} == set(CLUSTERS)
    assert all("istio_requests_total" in (e.data or {}).get("query", "") for e in measurements)
    stable_everywhere(sim)


def test_canary_with_errors_rolls_back_everywhere_and_gets_no_more_traffic(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer
) -> None:
    engine = make_engine(tmp_path, sessions, sim, GATED)
    first_release(engine)
    deployment_id = engine.create(request(overrides={"sim": {"errorRate": 0.3}}))
    assert engine.run(deployment_id) is Phase.ROLLED_BACK
    with sessions() as session:
        deployment = repo.get_deployment(session, deployment_id)
        assert "request-success-rate" in (deployment.message or "")
        failed = [e for e in repo.events_for(session, deployment_id) if e.type == "measurement"]
        assert any(e.data and e.data["phase"] == "Failed" for e in failed)
    stable_everywhere(sim)
    canary_version = live(sim, "aws", CANARY)["spec"]["template"]["metadata"]["labels"]["version"]
    stable_version = live(sim, "aws", DEPLOYMENT)["spec"]["template"]["metadata"]["labels"]["version"]

    def requests_to(version: str) -> float:
        text = sim.cluster("aws").metrics_text().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("istio_requests_total{") and f'destination_version="{version}"' in line
        )

    canary_before, stable_before = requests_to(canary_version), requests_to(stable_version)
    time.sleep(1.0)
    # The canary got no traffic in that second while the stable version kept serving (so the window saw
    # traffic at all).
    assert requests_to(canary_version) == canary_before
    assert requests_to(stable_version) > stable_before


def test_broken_condition_is_refused_before_anything_is_applied(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer
) -> None:
    broken = (
        GATED
        + """analysisTemplates:
  broken:
    metrics:
      - name: rate
        successCondition: "result[0] >= "
        provider:
          prometheus: {query: "sum(rate(istio_requests_total[1m]))"}
"""
    )
    engine = make_engine(tmp_path, sessions, sim, broken)
    with pytest.raises(ConfigError) as caught:
        engine.create(request())
    assert caught.value.file is not None and caught.value.file.endswith("pipelines/api.yaml")
    assert "successCondition" in str(caught.value)
    assert sum(len(sim.cluster(c).request_log.writes()) for c in CLUSTERS) == 0


def test_pause_until_approved_then_abort_leaves_every_cluster_stable(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer
) -> None:
    engine = make_engine(tmp_path, sessions, sim, UNTIL_APPROVED)
    first_release(engine)
    deployment_id = engine.create(request(overrides={"replicas": 3}))
    assert engine.run(deployment_id) is Phase.PAUSED
    assert weights(sim, "aws") == {"stable": 70, "canary": 30}
    assert engine.abort(deployment_id) == ["aws"]  # wave 1 is the only one touched
    with sessions() as session:
        deployment = repo.get_deployment(session, deployment_id)
        assert deployment.phase == Phase.ABORTED.value
        assert [(c.cluster, c.phase) for c in deployment.clusters] == [
            ("aws", "Aborted"),
            ("azure", "Pending"),
            ("gcp", "Pending"),
        ]
    stable_everywhere(sim)


def test_approve_continues_and_full_approval_skips_the_rest(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer
) -> None:
    engine = make_engine(tmp_path, sessions, sim, UNTIL_APPROVED)
    first_release(engine)
    deployment_id = engine.create(request(overrides={"replicas": 3}))
    assert engine.run(deployment_id) is Phase.PAUSED  # wave 1 (aws) waits at its pause
    engine.approve(deployment_id)
    assert engine.run(deployment_id) is Phase.PAUSED  # wave 2 (azure, gcp) waits at its pause
    assert weights(sim, "aws") == {"stable": 0, "canary": 100}
    engine.approve(deployment_id, full=True)
    assert engine.run(deployment_id) is Phase.SUCCEEDED
    stable_everywhere(sim)
    with sessions() as session:
        skipped = [e for e in repo.events_for(session, deployment_id) if (e.data or {}).get("skipped")]
    assert skipped


def test_routes_of_other_managers_survive_a_canary(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer
) -> None:
    engine = make_engine(
        tmp_path,
        sessions,
        sim,
        GATED.replace(
            "      - analysis:\n          templates:\n            - templateName: request-success-rate\n", ""
        ),
    )
    first_release(engine)
    client = sim_client(sim, "aws")
    vs = live(sim, "aws", VS)
    foreign = copy.deepcopy(FOREIGN_ROUTE)
    vs["spec"]["http"].insert(0, foreign)
    client.replace(VS, vs, field_manager="ops-team")
    assert engine.run(engine.create(request(overrides={"replicas": 4}))) is Phase.SUCCEEDED
    routes = live(sim, "aws", VS)["spec"]["http"]
    assert routes[0] == foreign
    assert weights(sim, "aws") == {"stable": 100, "canary": 0}


def test_a_second_rollout_of_the_same_service_waits_its_turn(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer
) -> None:
    engine = make_engine(tmp_path, sessions, sim, UNTIL_APPROVED)
    first_release(engine)
    holding = engine.create(request(overrides={"replicas": 3}))
    assert engine.run(holding) is Phase.PAUSED
    with sessions() as session:
        before = len(repo.list_deployments(session, "api"))
    with pytest.raises(DeploymentConflictError, match=f"already being rolled out by deployment {holding}"):
        engine.create(request(overrides={"replicas": 4}))
    with sessions() as session:  # refused before anything was recorded: the holder is still the newest
        listed = repo.list_deployments(session, "api")
        assert len(listed) == before and listed[0].id == holding


BACKGROUND = """strategy:
  canary:
    analysis:
      templates:
        - templateName: request-success-rate
    steps:
      - setWeight: 20
      - pause: {duration: 12s}
      - setWeight: 50
      - pause: {duration: 1s}
"""


def test_background_analysis_fails_a_canary_during_a_pause(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer
) -> None:
    engine = make_engine(tmp_path, sessions, sim, BACKGROUND)
    first_release(engine)
    deployment_id = engine.create(request(overrides={"sim": {"errorRate": 0.3}}))
    started = time.monotonic()
    assert engine.run(deployment_id) is Phase.ROLLED_BACK
    assert time.monotonic() - started < 12  # the first wave's 12 s pause was cut short by the failure
    with sessions() as session:
        deployment = repo.get_deployment(session, deployment_id)
        assert "background analysis failed" in (deployment.message or "")
        events = repo.events_for(session, deployment_id)
    assert any(e.type == "measurement" and (e.data or {}).get("phase") == "Failed" for e in events)
    stable_everywhere(sim)


def test_background_analysis_passes_a_healthy_canary(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer
) -> None:
    engine = make_engine(tmp_path, sessions, sim, BACKGROUND.replace("12s", "6s"))
    first_release(engine)
    deployment_id = engine.create(request(overrides={"replicas": 3}))
    assert engine.run(deployment_id) is Phase.SUCCEEDED
    with sessions() as session:
        measurements = [e for e in repo.events_for(session, deployment_id) if e.type == "measurement"]
    assert any((e.data or {}).get("phase") == "Successful" for e in measurements)
    stable_everywhere(sim)
