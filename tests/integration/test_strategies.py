"""Blue-green, header routes and mirrors on the emulated clusters."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import Project
from orchestrator.rollout.engine import DeployRequest, RolloutEngine
from orchestrator.sim.server import SimServer
from orchestrator.store.models import Phase
from tests.integration.rollout_fixtures import (
    CANARY,
    DEPLOYMENT,
    VS,
    estate_with_strategy,
    live,
    sim_client,
    sim_engine,
)

BLUE_GREEN = """strategy:
  blueGreen:
    autoPromotionEnabled: false
    scaleDownDelay: 1s
"""
ROUTES = """strategy:
  canary:
    steps:
      - setHeaderRoute:
          name: testers
          match:
            - headerName: x-canary
              headerValue: {exact: "yes"}
      - setMirror: {name: shadow, percentage: 25}
      - pause: {}
      - setWeight: 50
"""


def engine_for(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer, strategy: str
) -> RolloutEngine:
    root = estate_with_strategy(tmp_path / "estate", strategy)
    local = root / "environments/local.yaml"
    local.write_text(local.read_text().replace("  - [aws]\n  - [azure, gcp]\n", "  - [aws, azure, gcp]\n"))
    return sim_engine(Project(root), sessions, sim)


def request(**overrides: Any) -> DeployRequest:
    return DeployRequest(service="api", environment="local", git_commit="c" * 40, overrides=overrides)


def http_routes(sim: SimServer, cluster: str) -> dict[str, dict[str, Any]]:
    vs = sim_client(sim, cluster).get(VS)
    assert vs is not None
    return {r["name"]: r for r in vs["spec"]["http"]}


def primary_weights(sim: SimServer, cluster: str) -> dict[str, int]:
    route = http_routes(sim, cluster)["primary"]
    return {d["destination"]["subset"]: d["weight"] for d in route["route"]}


def requests_to(sim: SimServer, version: str) -> float:
    """Requests the emulated mesh of aws has served to pods of `version` (Istio's counter)."""
    text = sim.cluster("aws").metrics_text().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("istio_requests_total{") and f'destination_version="{version}"' in line
    )


def test_blue_green_previews_then_switches_when_approved(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer
) -> None:
    engine = engine_for(tmp_path, sessions, sim, BLUE_GREEN)
    assert engine.run(engine.create(request())) is Phase.SUCCEEDED
    deployment_id = engine.create(request(replicas=3))
    assert engine.run(deployment_id) is Phase.PAUSED
    for cluster in ("aws", "azure", "gcp"):
        preview = sim_client(sim, cluster).get(CANARY)
        assert preview is not None and preview["status"]["readyReplicas"] == 3  # the preview is up ...
        assert primary_weights(sim, cluster) == {"stable": 100, "canary": 0}  # ... and gets no traffic
    preview_version = live(sim, "aws", CANARY)["spec"]["template"]["metadata"]["labels"]["version"]
    stable_version = live(sim, "aws", DEPLOYMENT)["spec"]["template"]["metadata"]["labels"]["version"]
    preview_before, stable_before = requests_to(sim, preview_version), requests_to(sim, stable_version)
    time.sleep(1.0)
    assert requests_to(sim, preview_version) == preview_before  # no request reached the preview ...
    assert requests_to(sim, stable_version) > stable_before  # ... while the stable version kept serving
    engine.approve(deployment_id)
    started = time.monotonic()
    assert engine.run(deployment_id) is Phase.SUCCEEDED
    assert time.monotonic() - started >= 1.0  # the preview kept its pods for scaleDownDelay
    for cluster in ("aws", "azure", "gcp"):
        assert primary_weights(sim, cluster) == {"stable": 100, "canary": 0}
        assert sim_client(sim, cluster).get(CANARY)["spec"]["replicas"] == 0  # type: ignore[index]
        stable = sim_client(sim, cluster).get(DEPLOYMENT)
        assert stable is not None and stable["spec"]["replicas"] == 3


def test_header_route_and_mirror_while_paused_and_gone_after_promotion(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer
) -> None:
    engine = engine_for(tmp_path, sessions, sim, ROUTES)
    assert engine.run(engine.create(request())) is Phase.SUCCEEDED
    deployment_id = engine.create(request(replicas=3))
    assert engine.run(deployment_id) is Phase.PAUSED
    routes = http_routes(sim, "aws")
    assert list(routes) == ["addtocloud-testers", "primary"]
    testers = routes["addtocloud-testers"]
    assert testers["match"] == [{"headers": {"x-canary": {"exact": "yes"}}}]
    assert testers["route"][0]["destination"]["subset"] == "canary"
    (mirror,) = routes["primary"]["mirrors"]  # named mirrors are entries of Istio's `mirrors` list
    assert (mirror["destination"]["subset"], mirror["percentage"]) == ("canary", {"value": 25.0})
    assert primary_weights(sim, "aws") == {"stable": 100, "canary": 0}
    engine.approve(deployment_id)
    assert engine.run(deployment_id) is Phase.SUCCEEDED
    routes = http_routes(sim, "aws")
    assert list(routes) == ["primary"]
    assert "mirror" not in routes["primary"] and "mirrors" not in routes["primary"]
