"""A 409 storm: another manager keeps writing the api's VirtualService and DestinationRule in every cluster
while a canary goes through every kind of step. Each of our writes there is refused with 409 at least
twice (the emulator's rivals write just before it, and every 200 ms on their own); the rollout still ends
Succeeded, every cluster on the new release, the store saying the same, and the other manager's route and
subset still in place."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import Project
from orchestrator.render.engine import Renderer
from orchestrator.rollout.engine import DeployRequest
from orchestrator.rollout.workload import ClusterState, ClusterWorkload
from orchestrator.sim.rivals import Rival
from orchestrator.sim.server import SimServer
from orchestrator.store import repository as repo
from orchestrator.store.models import Phase
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

EVERY_STEP_KIND = """strategy:
  canary:
    steps:
      - setWeight: 20
      - setHeaderRoute:
          name: beta
          match:
            - headerName: x-beta
              headerValue: {exact: "1"}
      - setMirror: {name: shadow, percentage: 20}
      - pause: {duration: 0.3s}
      - analysis:
          templates:
            - templateName: request-success-rate
      - setMirror: {name: shadow, remove: true}
      - setHeaderRoute: {name: beta}
      - setWeight: 60
"""
PREEMPT = 2  # the rival writes just before each of our writes this many times in a row
SECOND = {"env": {"RELEASE": "2"}}


def route_change(vs: dict[str, Any], n: int) -> None:
    """The other manager's own route: added when missing, its match value moved on every write."""
    http = vs["spec"].setdefault("http", [])
    mine = next((r for r in http if r.get("name") == FOREIGN_ROUTE["name"]), None)
    if mine is None:
        mine = {**FOREIGN_ROUTE, "match": [{"headers": {"x-debug": {"exact": "0"}}}]}
        http.insert(0, mine)
    mine["match"] = [{"headers": {"x-debug": {"exact": str(n)}}}]


def subset_change(rule: dict[str, Any], n: int) -> None:
    subsets = rule["spec"].setdefault("subsets", [])
    mine = next((s for s in subsets if s.get("name") == "ops-debug"), None)
    if mine is None:
        mine = {"name": "ops-debug"}
        subsets.append(mine)
    mine["labels"] = {"ops.example.com/build": str(n)}


@pytest.fixture
def storm(sim: SimServer) -> Iterator[dict[tuple[str, str], Rival]]:
    """Rivals on the api's VirtualService and DestinationRule of every cluster, not yet started."""
    rivals = {
        (cluster, path): sim.cluster(cluster).rivals.add(Rival(path, change, preempt=PREEMPT))
        for cluster in CLUSTERS
        for path, change in ((VS, route_change), (DR, subset_change))
    }
    yield rivals
    for cluster in CLUSTERS:
        sim.cluster(cluster).rivals.clear()


def test_a_409_storm_in_every_step_kind_ends_succeeded_on_the_new_release(
    tmp_path: Path,
    sessions: sessionmaker[Session],
    sim: SimServer,
    storm: dict[tuple[str, str], Rival],
) -> None:
    project = Project(estate_with_strategy(tmp_path / "storm", EVERY_STEP_KIND))
    engine = sim_engine(project, sessions, sim)
    request = DeployRequest(service="api", environment="local", git_commit="a" * 40)
    for rival in storm.values():
        rival.preempt = 0  # the first release creates the objects undisturbed
    assert engine.run(engine.create(request)) is Phase.SUCCEEDED

    steps: list[tuple[float, str]] = []
    engine.report = lambda event: (
        steps.append((time.time(), event["label"])) if event["type"] == "step" else None
    )
    for (cluster, _), rival in storm.items():
        rival.preempt = PREEMPT
        # Every 200 ms on their own, holding off while a write they refused PREEMPT times is owed its pass:
        # before that hold, the timer raced a loaded machine's GET + PUT, each hit starting a new streak,
        # and 8 refusals in a row ended a CI run's storm RolledBack.
        sim.cluster(cluster).rivals.start(rival, interval=0.2)
    for cluster in CLUSTERS:
        sim.cluster(cluster).request_log.reset()

    second = DeployRequest(service="api", environment="local", git_commit="b" * 40, overrides=SECOND)
    deployment_id = engine.create(second)
    assert engine.run(deployment_id) is Phase.SUCCEEDED
    finished = time.time()
    for (cluster, _), rival in storm.items():
        sim.cluster(cluster).rivals.stop(rival)

    # Every cluster runs the new release, at rest: all traffic on stable, both subsets on it, canary at 0.
    renderer = Renderer(project)
    sets = renderer.render_environment(
        project.pipeline("api"), project.environment("local"), overrides=SECOND
    )
    for rendered in sets:
        cluster = rendered.cluster
        assert live(sim, cluster, DEPLOYMENT)["spec"]["template"]["metadata"]["labels"]["version"] == (
            rendered.version
        )
        assert weights(sim, cluster) == {"stable": 100, "canary": 0}
        subsets = {s["name"]: s.get("labels") for s in live(sim, cluster, DR)["spec"]["subsets"]}
        assert subsets["stable"]["version"] == subsets["canary"]["version"] == rendered.version
        assert live(sim, cluster, CANARY)["spec"]["replicas"] == 0
        observed = ClusterWorkload(sim_client(sim, cluster), rendered).observe()
        assert observed == ClusterState(rendered.version, rendered.version, 0, 0) and observed.at_rest
        vs = live(sim, cluster, VS)
        assert [r["name"] for r in vs["spec"]["http"]] == [FOREIGN_ROUTE["name"], "primary"]
        assert "addtocloud.io/mirrors" not in vs["metadata"].get("annotations", {})
        # ...and the other manager's route and subset are there, as it last wrote them.
        foreign = vs["spec"]["http"][0]
        assert foreign["match"] == [{"headers": {"x-debug": {"exact": str(len(storm[cluster, VS].writes))}}}]
        assert foreign["route"] == FOREIGN_ROUTE["route"]
        assert subsets["ops-debug"] == {"ops.example.com/build": str(len(storm[cluster, DR].writes))}

    # The store says the same.
    with sessions() as session:
        deployment = repo.get_deployment(session, deployment_id)
        assert deployment.phase == Phase.SUCCEEDED.value
        assert {c.cluster: (c.phase, c.canary_weight) for c in deployment.clusters} == {
            c: (Phase.SUCCEEDED.value, 0) for c in CLUSTERS
        }

    # Each of our writes to the two objects was refused at least PREEMPT times, then went through.
    conflicts: list[float] = []
    for cluster in CLUSTERS:
        for path in (VS, DR):
            puts = [
                e for e in sim.cluster(cluster).request_log.entries() if e.path == path and e.method == "PUT"
            ]
            assert puts and puts[-1].status == 200
            refused = 0
            for entry in puts:
                if entry.status == 409:
                    refused += 1
                    conflicts.append(entry.time)
                else:
                    assert entry.status == 200
                    assert refused >= PREEMPT, f"{cluster} {path}: a write went through unopposed"
                    refused = 0

    # ...in every step that writes them; the other manager kept writing through the pause and the analysis.
    rival_writes = sorted(t for rival in storm.values() for t in rival.writes)
    ends = [t for t, _ in steps[1:]] + [finished]
    windows = [(label, start, end) for (start, label), end in zip(steps, ends, strict=True)]
    kinds_seen: set[str] = set()
    for label, start, end in windows:
        kind = label.split(" · ")[0].split(" ")[0]
        if kind in ("pause", "analysis"):
            assert any(start <= t < end for t in rival_writes), label
        else:
            assert any(start <= t < end for t in conflicts), label
        kinds_seen.add(kind)
    assert kinds_seen == {"start", "setWeight", "setHeaderRoute", "setMirror", "pause", "analysis", "promote"}
