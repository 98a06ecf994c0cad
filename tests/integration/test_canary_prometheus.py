"""Canary rollouts gated by the REAL Prometheus scraping the emulated mesh of three clusters every second.

Each test runs the in-process emulator (aws, azure, gcp), a Debian `prometheus` scraping the three clusters'
mesh /metrics at 1 s, and an engine whose gates query that Prometheus. A first release is deployed directly,
then a second one rolls out as a canary in ONE wave (all three clusters at once, which keeps the tests short
and makes every cluster take part in the verdict and the rollback). The built-in templates measure every
5 s; right after `setWeight` the canary has no series in Prometheus yet (rate() needs two scrapes), so its
first measurement is usually an Error, retried under consecutiveErrorLimit — the engine copes with that, the
tests never sleep to avoid it.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.analysis.templates import BUILTIN_INTERVAL_SECONDS, SUCCESS_RATE_QUERY
from orchestrator.config import ClusterConfig, Environment, Pipeline, Project
from orchestrator.kube.client import KubeClient
from orchestrator.rollout.desired import GitDesiredState
from orchestrator.rollout.engine import DeployRequest, RolloutEngine
from orchestrator.rollout.gates import AnalysisGate, AnalysisGateRunner
from orchestrator.sim.server import SimServer
from orchestrator.store import repository as repo
from orchestrator.store.models import DeploymentEvent, Phase
from tests.integration.rollout_fixtures import (
    CANARY,
    CLUSTERS,
    DEPLOYMENT,
    DR,
    estate_with_strategy,
    live,
    sim_client,
    weights,
)
from tests.integration.test_canary_metrics_vanish import silence_canary
from tests.services.prometheus import PrometheusServer

# 1000 ms added to the emulator's 10 ms median: p99 ≈ 2.3 s, far over the built-in 500 ms threshold.
SLOW_MS = 1000


def canary_steps(*templates: str) -> str:
    """A short canary: 20 %, a gate of `templates`, 50 %, a 0.2 s pause (then the implied 100)."""
    refs = "".join(f"            - templateName: {name}\n" for name in templates)
    return (
        "strategy:\n  canary:\n    steps:\n      - setWeight: 20\n"
        f"      - analysis:\n          templates:\n{refs}"
        "      - setWeight: 50\n      - pause: {duration: 0.2s}\n"
    )


def with_templates(strategy: str, templates: dict[str, Any]) -> str:
    """`strategy` followed by a pipeline `analysisTemplates:` block (queries carry quotes: YAML-dumped)."""
    return strategy + yaml.safe_dump({"analysisTemplates": templates}, sort_keys=False, width=10_000)


# The judge compares per-second p99 latency of the canary's version with stable's over its lookback. The
# initial delay lets the canary (which gets traffic only from setWeight on) build up samples first: with
# one or two samples the confidence interval is unbounded and the judge cannot tell anything apart.
JUDGE_LOOKBACK_SECONDS = 8
JUDGE_P99_QUERY = (
    "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{"
    'reporter="destination",destination_workload_namespace="{{namespace}}",'
    'destination_service_name="{{service}}",destination_version="{{version}}"}[5s])) by (le))'
)
LATENCY_JUDGE = {
    "latency-judge": {
        "metrics": [
            {
                "name": "latency-judge",
                "initialDelay": f"{JUDGE_LOOKBACK_SECONDS}s",
                "count": 1,
                "interval": "1s",
                "consecutiveErrorLimit": 5,
                "provider": {
                    "judge": {
                        "metrics": [
                            {
                                "name": "p99-latency",
                                "query": JUDGE_P99_QUERY,
                                "direction": "increase",
                                # as a user would: a few per cent of noise is not a regression
                                "effectSize": {"allowedIncrease": 1.2},
                            }
                        ],
                        "lookback": f"{JUDGE_LOOKBACK_SECONDS}s",
                        "step": "1s",
                    }
                },
            }
        ]
    }
}

# The built-in success rate, measured every second and given up after two errors in a row (the built-in's
# own 5 s x 4 would make the fail-safe test wait 20 s for the same verdict).
FAST_ERROR_LIMIT = 2
FAST_SUCCESS_RATE = {
    "success-rate-fast": {
        "metrics": [
            {
                "name": "success-rate-fast",
                "interval": "1s",
                "count": 3,
                "consecutiveErrorLimit": FAST_ERROR_LIMIT,
                "successCondition": "result[0] >= 99",
                "failureCondition": "result[0] < 99",
                "provider": {"prometheus": {"query": SUCCESS_RATE_QUERY}},
            }
        ]
    }
}


@pytest.fixture
def prometheus(sim: SimServer, tmp_path: Path) -> Iterator[PrometheusServer]:
    """The real Prometheus scraping the three clusters' mesh /metrics every second (not yet waited for:
    tests deploy their first release while its first scrapes come)."""
    server = PrometheusServer([sim.metrics_endpoint(c) for c in CLUSTERS], tmp_path / "prometheus")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def one_wave_estate(root: Path, strategy: str) -> Path:
    """The reference estate with `strategy`, and `local` rolling out to every cluster in one wave."""
    estate_with_strategy(root, strategy)
    local = root / "environments/local.yaml"
    text = local.read_text()
    assert "  - [aws]\n  - [azure, gcp]\n" in text, "environments/local.yaml's waves changed"
    local.write_text(text.replace("  - [aws]\n  - [azure, gcp]\n", "  - [aws, azure, gcp]\n"))
    return root


class Rollouts:
    """An engine on the emulator whose gates ask the Prometheus at `prometheus_url`, and what it reported."""

    def __init__(
        self, root: Path, sessions: sessionmaker[Session], sim: SimServer, prometheus_url: str
    ) -> None:
        self.sessions = sessions
        self.reports: list[dict[str, Any]] = []

        def connect(cluster: ClusterConfig) -> KubeClient:
            return sim_client(sim, cluster.name)

        def gates(pipeline: Pipeline, environment: Environment) -> AnalysisGate:
            return AnalysisGateRunner(pipeline, environment, prometheus=prometheus_url)

        self.engine = RolloutEngine(
            Project(root),
            sessions,
            desired=GitDesiredState(root / ".orchestrator", root),
            connect=connect,
            gates=gates,
            report=self.reports.append,
            poll_interval=0.05,
        )

    def deploy(self, **overrides: Any) -> tuple[uuid.UUID, Phase]:
        deployment_id = self.engine.create(
            DeployRequest(service="api", environment="local", git_commit="c" * 40, overrides=overrides)
        )
        return deployment_id, self.engine.run(deployment_id)

    def events(self, deployment_id: uuid.UUID) -> list[DeploymentEvent]:
        with self.sessions() as session:
            return list(repo.events_for(session, deployment_id))

    def measurements(self, deployment_id: uuid.UUID) -> list[dict[str, Any]]:
        """Every stored measurement's data, with the cluster it was taken in."""
        return [
            {**(e.data or {}), "cluster": e.cluster}
            for e in self.events(deployment_id)
            if e.type == "measurement"
        ]

    def message(self, deployment_id: uuid.UUID) -> str:
        with self.sessions() as session:
            return repo.get_deployment(session, deployment_id).message or ""


def start(
    tmp_path: Path, strategy: str, sessions: sessionmaker[Session], sim: SimServer, url: str
) -> Rollouts:
    """The engine, with the first release deployed directly everywhere (nothing to compare it with)."""
    rollouts = Rollouts(one_wave_estate(tmp_path / "estate", strategy), sessions, sim, url)
    _, phase = rollouts.deploy()
    assert phase is Phase.SUCCEEDED
    return rollouts


def version_of(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["metadata"]["labels"]["version"])


def rolled_back_everywhere(sim: SimServer, stable_version: str) -> str:
    """Every cluster: 100 % stable, the canary subset on stable pods, a canary at 0 replicas. Returns the
    (retired) canary's version."""
    canary_versions = set()
    for cluster in CLUSTERS:
        assert weights(sim, cluster) == {"stable": 100, "canary": 0}, cluster
        assert version_of(live(sim, cluster, DEPLOYMENT)) == stable_version, cluster
        subsets = {s["name"]: s["labels"]["version"] for s in live(sim, cluster, DR)["spec"]["subsets"]}
        assert subsets == {"stable": stable_version, "canary": stable_version}, cluster
        canary = live(sim, cluster, CANARY)  # one wave: every cluster ran the canary
        assert canary["spec"]["replicas"] == 0, cluster
        canary_versions.add(version_of(canary))
    [canary_version] = canary_versions
    assert canary_version != stable_version
    return canary_version


def canary_requests(sim: SimServer, cluster: str, version: str) -> float:
    """The emulated mesh's istio_requests_total of `version` in `cluster`, all response codes."""
    text = sim.cluster(cluster).metrics_text().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("istio_requests_total{") and f'destination_version="{version}"' in line
    )


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def by_phase(measurements: list[dict[str, Any]], phase: str) -> list[dict[str, Any]]:
    return [m for m in measurements if m["phase"] == phase]


def first_value(measurement: dict[str, Any]) -> float:
    value = measurement["value"]
    assert isinstance(value, list) and len(value) == 1, measurement
    return float(value[0])


def test_a_healthy_canary_is_promoted_on_prometheus_measurements(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer, prometheus: PrometheusServer
) -> None:
    strategy = canary_steps("request-success-rate", "request-duration-p99")
    rollouts = start(tmp_path, strategy, sessions, sim, prometheus.url)
    old_version = version_of(live(sim, "aws", DEPLOYMENT))
    prometheus.wait_for_scrapes()

    deployment_id, phase = rollouts.deploy(env={"RELEASE": "2"})
    assert phase is Phase.SUCCEEDED, rollouts.message(deployment_id)
    assert {"type": "gates", "source": f"prometheus at {prometheus.url}"} in rollouts.reports

    measurements = rollouts.measurements(deployment_id)
    assert measurements and {m["source"] for m in measurements} == {"prometheus"}
    new_version = version_of(live(sim, "aws", DEPLOYMENT))
    assert new_version != old_version
    for cluster in CLUSTERS:
        taken = [m for m in measurements if m["cluster"] == cluster]
        for metric in ("request-success-rate", "request-duration-p99"):
            passed = [m for m in by_phase(taken, "Successful") if m["metric"] == metric]
            assert len(passed) >= 2, (cluster, metric, taken)  # the gate's two measurements per step
            assert all(f'destination_version="{new_version}"' in m["query"] for m in passed)
            assert all(m["details"]["address"] == prometheus.url for m in passed)
        assert not by_phase(taken, "Failed") and not by_phase(taken, "Inconclusive"), taken
        rates = [
            first_value(m) for m in by_phase(taken, "Successful") if m["metric"] == "request-success-rate"
        ]
        p99s = [
            first_value(m) for m in by_phase(taken, "Successful") if m["metric"] == "request-duration-p99"
        ]
        assert all(r == pytest.approx(100.0) for r in rates), rates
        assert all(10 < p < 50 for p in p99s), p99s  # a 10 ms median: p99 in Istio's 10-25 ms bucket
        # promoted: the new version is stable, takes all traffic, and no canary runs
        assert weights(sim, cluster) == {"stable": 100, "canary": 0}
        assert version_of(live(sim, cluster, DEPLOYMENT)) == new_version
        canary = sim_client(sim, cluster).get(CANARY)
        assert canary is None or canary["spec"]["replicas"] == 0


def test_a_canary_with_30_percent_errors_is_rolled_back_within_one_interval_and_gets_no_more_traffic(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer, prometheus: PrometheusServer
) -> None:
    rollouts = start(tmp_path, canary_steps("request-success-rate"), sessions, sim, prometheus.url)
    stable_version = version_of(live(sim, "aws", DEPLOYMENT))
    prometheus.wait_for_scrapes()

    deployment_id, phase = rollouts.deploy(sim={"errorRate": 0.3})
    assert phase is Phase.ROLLED_BACK
    assert "request-success-rate" in rollouts.message(deployment_id)

    measurements = rollouts.measurements(deployment_id)
    assert {m["source"] for m in measurements} == {"prometheus"}
    real = sorted((m for m in measurements if m["phase"] != "Error"), key=lambda m: m["finishedAt"])
    assert real, measurements
    assert {m["phase"] for m in real} == {"Failed"}, real  # never passed, not even once
    # failureLimit 0: a cluster's first real measurement decides (a cluster may also be stopped before it
    # takes one, once another cluster's verdict is in)
    assert all(len([m for m in real if m["cluster"] == c]) <= 1 for c in CLUSTERS), real
    for failed in real:
        assert 60 < first_value(failed) < 80, failed  # about 70 % of the canary's requests succeed
        assert "failure condition met: result[0] < 99" in failed["message"]
        # The stable's figure from the same query about the stable, beside it for comparison only.
        [stable_rate] = failed["details"]["stable"]
        assert stable_rate == 100.0, failed

    rolled_back = next(
        e
        for e in rollouts.events(deployment_id)
        if e.type == "phase" and (e.data or {}).get("to") == "RolledBack"
    )
    first_real = moment(real[0]["finishedAt"])
    assert (rolled_back.created_at - first_real).total_seconds() < BUILTIN_INTERVAL_SECONDS

    canary_version = rolled_back_everywhere(sim, stable_version)
    before = {c: canary_requests(sim, c, canary_version) for c in CLUSTERS}
    assert all(count > 0 for count in before.values()), before  # it did take traffic during the canary
    time.sleep(1.0)  # the one fixed wait: measuring that nothing more arrives
    assert {c: canary_requests(sim, c, canary_version) for c in CLUSTERS} == before


def test_a_latency_regression_is_caught_by_the_p99_gate(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer, prometheus: PrometheusServer
) -> None:
    strategy = canary_steps("request-success-rate", "request-duration-p99")
    rollouts = start(tmp_path, strategy, sessions, sim, prometheus.url)
    stable_version = version_of(live(sim, "aws", DEPLOYMENT))
    prometheus.wait_for_scrapes()

    deployment_id, phase = rollouts.deploy(sim={"latencyMs": SLOW_MS})
    assert phase is Phase.ROLLED_BACK
    assert "request-duration-p99" in rollouts.message(deployment_id)

    measurements = rollouts.measurements(deployment_id)
    failed = by_phase(measurements, "Failed")
    assert failed and {m["metric"] for m in failed} == {"request-duration-p99"}, failed
    assert all(first_value(m) > 500 for m in failed), failed
    assert all("failure condition met: result[0] > 500" in m["message"] for m in failed)
    rates = [m for m in measurements if m["metric"] == "request-success-rate" and m["phase"] != "Error"]
    assert all(m["phase"] == "Successful" for m in rates), rates  # slow, not failing
    rolled_back_everywhere(sim, stable_version)


def test_a_latency_regression_is_caught_by_the_judge(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer, prometheus: PrometheusServer
) -> None:
    strategy = with_templates(canary_steps("latency-judge"), LATENCY_JUDGE)
    rollouts = start(tmp_path, strategy, sessions, sim, prometheus.url)
    stable_version = version_of(live(sim, "aws", DEPLOYMENT))
    prometheus.wait_for_scrapes()

    deployment_id, phase = rollouts.deploy(sim={"latencyMs": SLOW_MS})
    assert phase is Phase.ROLLED_BACK
    assert "latency-judge" in rollouts.message(deployment_id)
    canary_version = rolled_back_everywhere(sim, stable_version)

    measurements = rollouts.measurements(deployment_id)
    assert {m["source"] for m in measurements} == {"judge"}
    verdicts = [m for m in measurements if m["phase"] != "Error"]
    assert verdicts and all(len([v for v in verdicts if v["cluster"] == c]) <= 1 for c in CLUSTERS), verdicts
    for verdict in verdicts:
        assert verdict["phase"] == "Failed", verdict
        assert verdict["value"] == 0.0  # its only metric failed: Kayenta's score is 0
        assert "score 0 (fail" in verdict["message"]
        [p99] = verdict["details"]["metrics"]
        assert p99["classification"] == "High" and p99["failed"], p99
        assert p99["canary_median"] > 500 and p99["stable_median"] < 50, p99
        assert p99["canary_count"] >= 3 and p99["stable_count"] >= JUDGE_LOOKBACK_SECONDS - 2, p99
        assert f'destination_version="{canary_version}"' in verdict["query"]
        assert f'destination_version="{stable_version}"' in verdict["query"]


def test_unreachable_prometheus_errors_then_rolls_back(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer, prometheus: PrometheusServer
) -> None:
    """Prometheus goes away before the canary: every measurement is an Error, and once a cluster has more
    errors in a row than consecutiveErrorLimit the rollout rolls back instead of going on blind."""
    strategy = with_templates(canary_steps("success-rate-fast"), FAST_SUCCESS_RATE)
    rollouts = start(tmp_path, strategy, sessions, sim, prometheus.url)
    stable_version = version_of(live(sim, "aws", DEPLOYMENT))
    prometheus.stop()  # nothing listens at its address any more
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{prometheus.url}/-/ready", timeout=2.0)

    deployment_id, phase = rollouts.deploy(env={"RELEASE": "2"})
    assert phase is Phase.ROLLED_BACK
    message = rollouts.message(deployment_id)
    assert (
        f"consecutiveErrors ({FAST_ERROR_LIMIT + 1}) > consecutiveErrorLimit ({FAST_ERROR_LIMIT})" in message
    )

    measurements = rollouts.measurements(deployment_id)
    assert measurements and {m["phase"] for m in measurements} == {"Error"}
    assert {m["source"] for m in measurements} == {"prometheus"}
    assert all(f"cannot reach Prometheus at {prometheus.url}" in m["message"] for m in measurements)
    # a cluster gives up after the limit's worth of retries (the others may be stopped by then)
    per_cluster = {c: len([m for m in measurements if m["cluster"] == c]) for c in CLUSTERS}
    assert max(per_cluster.values()) == FAST_ERROR_LIMIT + 1, per_cluster
    assert all(1 <= n <= FAST_ERROR_LIMIT + 1 for n in per_cluster.values()), per_cluster
    rolled_back_everywhere(sim, stable_version)


def test_a_failure_in_one_cluster_stops_the_waves_other_analyses(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer, prometheus: PrometheusServer
) -> None:
    root = one_wave_estate(tmp_path / "estate", canary_steps("request-success-rate"))
    local = root / "environments/local.yaml"  # only aws's pods answer 30 % errors, old and new release
    aws = "    target: {type: sim, cluster: aws}\n"
    local.write_text(local.read_text().replace(aws, aws + "    values: {sim: {errorRate: 0.3}}\n"))
    rollouts = Rollouts(root, sessions, sim, prometheus.url)
    _, first = rollouts.deploy()
    assert first is Phase.SUCCEEDED
    prometheus.wait_for_scrapes()

    deployment_id, phase = rollouts.deploy(env={"RELEASE": "2"})
    assert phase is Phase.ROLLED_BACK
    measurements = rollouts.measurements(deployment_id)
    [failed] = by_phase(measurements, "Failed")
    assert failed["cluster"] == "aws"
    failed_at = moment(failed["finishedAt"])
    later = [m for m in measurements if moment(m["startedAt"]) > failed_at]
    rolled_back = next(
        e
        for e in rollouts.events(deployment_id)
        if e.type == "phase" and (e.data or {}).get("to") == "RolledBack"
    )
    assert not later, later  # the verdict was in: nothing more to measure
    assert (rolled_back.created_at - failed_at).total_seconds() < BUILTIN_INTERVAL_SECONDS


# The built-in success rate over a 5 s window, every second: once a canary stops reporting, its counters
# stop growing and the rate is 0 / 0 within 5 s.
SHORT_WINDOW_SUCCESS_RATE = {
    "success-rate-5s": {
        "args": [{"name": "window", "value": "5s"}],
        "metrics": [
            {
                "name": "success-rate-5s",
                "interval": "1s",
                "count": 12,
                "consecutiveErrorLimit": 3,
                "successCondition": "result[0] >= 99",
                "failureCondition": "result[0] < 99",
                "provider": {"prometheus": {"query": SUCCESS_RATE_QUERY}},
            }
        ],
    }
}


def test_a_canary_that_stops_reporting_to_prometheus_mid_analysis_is_never_promoted(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer, prometheus: PrometheusServer
) -> None:
    strategy = with_templates(canary_steps("success-rate-5s"), SHORT_WINDOW_SUCCESS_RATE)
    rollouts = start(tmp_path, strategy, sessions, sim, prometheus.url)
    stable_version = version_of(live(sim, "aws", DEPLOYMENT))
    prometheus.wait_for_scrapes()

    outcome: dict[str, Any] = {}

    def drive() -> None:
        outcome["id"], outcome["phase"] = rollouts.deploy(env={"RELEASE": "2"})

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    silenced: set[str] = set()
    deadline = time.monotonic() + 120
    while driver.is_alive() and time.monotonic() < deadline and silenced != set(CLUSTERS):
        with sessions() as session:
            running = [
                d for d in repo.list_deployments(session, "api", "local") if d.phase == Phase.PROGRESSING
            ]
        taken = rollouts.measurements(running[0].id) if running else []
        for cluster in {m["cluster"] for m in taken if m["phase"] == "Successful"} - silenced:
            assert silence_canary(sim, cluster) > 0  # mid-analysis: after a first Successful measurement
            silenced.add(cluster)
        time.sleep(0.05)
    driver.join(timeout=120)
    assert not driver.is_alive(), "the rollout did not end"
    assert silenced == set(CLUSTERS)

    # An Inconclusive gate pauses the rollout for a person (reason InconclusiveAnalysis); promoted it never
    # is, and `abort` rolls every cluster back.
    assert outcome["phase"] is Phase.PAUSED, rollouts.message(outcome["id"])
    assert "analysis inconclusive, a person decides" in rollouts.message(outcome["id"])
    with sessions() as session:
        paused = repo.get_deployment(session, outcome["id"])
        assert list((paused.control or {})["pauses"]) == ["InconclusiveAnalysis"]
    assert rollouts.engine.abort(outcome["id"], actor="ops") == list(CLUSTERS)
    measurements = rollouts.measurements(outcome["id"])
    unsure = by_phase(measurements, "Inconclusive")
    assert unsure and all(math.isnan(float(first_value(m))) for m in unsure), (
        unsure
    )  # 0 / 0: no requests seen
    assert not by_phase(measurements, "Failed")
    rolled_back_everywhere(sim, stable_version)
