"""A canary that stops reporting metrics mid-analysis is never promoted (the emulated mesh, direct scrapes).

The canary's pods get `sim.addtocloud.io/telemetry: "off"` once its analysis has taken a Successful
measurement in every cluster: the mesh keeps serving its requests but its counters stop growing, as when a
sidecar's telemetry breaks. The built-in success-rate gate then sees a window without requests (NaN):
Inconclusive, never Successful. The engine pauses an Inconclusive gate for a person (reason
InconclusiveAnalysis, as Argo Rollouts does): the canary is never promoted, and `abort` rolls it back.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from orchestrator.analysis.templates import SUCCESS_RATE_QUERY
from orchestrator.sim.mesh import TELEMETRY
from orchestrator.sim.server import SimServer
from orchestrator.store import repository as repo
from orchestrator.store.models import Phase
from tests.integration.rollout_fixtures import CANARY, CLUSTERS, DEPLOYMENT, live, sim_client
from tests.integration.test_canary_gates import first_release, make_engine, request, stable_everywhere

PODS = "/api/v1/namespaces/addtocloud/pods"
# The built-in success-rate gate as a pipeline's own template, measured more often: four measurements 2 s
# apart, so the canary falls silent while its analysis is still measuring.
GATED = f"""strategy:
  canary:
    steps:
      - setWeight: 20
      - analysis:
          templates:
            - templateName: request-success-rate
      - setWeight: 50
analysisTemplates:
  request-success-rate:
    args: [{{name: min-success-rate, value: "99"}}]
    metrics:
      - name: request-success-rate
        interval: 2s
        count: 4
        successCondition: result[0] >= {{{{args.min-success-rate}}}}
        failureCondition: result[0] < {{{{args.min-success-rate}}}}
        provider:
          prometheus:
            query: '{SUCCESS_RATE_QUERY}'
            direct: request-success-rate
"""


def measurements(sessions: sessionmaker[Session], deployment_id: uuid.UUID) -> list[dict[str, object]]:
    with sessions() as session:
        return [
            {"cluster": e.cluster, **(e.data or {})}
            for e in repo.events_for(session, deployment_id)
            if e.type == "measurement"
        ]


def silence_canary(sim: SimServer, cluster: str) -> int:
    """Turn the canary pods' telemetry off; returns how many pods were changed."""
    client = sim_client(sim, cluster)
    version = live(sim, cluster, CANARY)["spec"]["template"]["metadata"]["labels"]["version"]
    changed = 0
    for pod in client.list(PODS):
        owner = (pod["metadata"].get("ownerReferences") or [{}])[0].get("name", "")
        if pod["metadata"]["labels"].get("version") == version and owner.startswith("api-canary"):
            patch = {"metadata": {"annotations": {TELEMETRY: "off"}}}
            client.merge_patch(f"{PODS}/{pod['metadata']['name']}", patch, field_manager="chaos")
            changed += 1
    return changed


def test_a_canary_whose_metrics_stop_mid_analysis_is_never_promoted(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer
) -> None:
    engine = make_engine(tmp_path, sessions, sim, GATED)
    first_release(engine)
    stable_version = live(sim, "aws", DEPLOYMENT)["spec"]["template"]["metadata"]["labels"]["version"]
    deployment_id = engine.create(request(overrides={"env": {"RELEASE": "2"}}))
    ended: dict[str, Phase] = {}
    driver = threading.Thread(target=lambda: ended.update(phase=engine.run(deployment_id)), daemon=True)
    driver.start()

    # Each wave's canaries fall silent once their analysis has a first Successful measurement.
    silenced: dict[str, int] = {}
    deadline = time.monotonic() + 120
    while driver.is_alive() and time.monotonic() < deadline:
        taken = measurements(sessions, deployment_id)
        for cluster in {str(m["cluster"]) for m in taken if m.get("phase") == "Successful"} - set(silenced):
            assert silence_canary(sim, cluster) > 0
            silenced[cluster] = len(taken)
        time.sleep(0.05)
    driver.join(timeout=10)
    assert not driver.is_alive(), "the rollout did not end"
    assert ended["phase"] is Phase.PAUSED

    assert silenced, "the canary's analysis never measured"
    after = [m for m in measurements(sessions, deployment_id)[min(silenced.values()) :]]
    assert any(m["phase"] == "Inconclusive" for m in after), after
    with sessions() as session:
        deployment = repo.get_deployment(session, deployment_id)
        assert "analysis inconclusive, a person decides" in (deployment.message or "")
        assert "request-success-rate" in (deployment.message or "")
        assert list((deployment.control or {})["pauses"]) == ["InconclusiveAnalysis"]
    for cluster in CLUSTERS:  # paused, not promoted: stable still runs the old release everywhere
        version = live(sim, cluster, DEPLOYMENT)["spec"]["template"]["metadata"]["labels"]["version"]
        assert version == stable_version
    touched = engine.abort(deployment_id, actor="ops")
    assert set(touched) == set(silenced)  # the clusters of the wave that paused, and only those
    # never promoted: every cluster still runs the stable release, the canary at 0
    stable_everywhere(sim)
    for cluster in CLUSTERS:
        version = live(sim, cluster, DEPLOYMENT)["spec"]["template"]["metadata"]["labels"]["version"]
        assert version == stable_version
