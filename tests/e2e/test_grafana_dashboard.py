"""The Grafana dashboard (`monitoring/grafana/orchestrator.json`) against the real stack it is drawn from.

`orchestrator sim up` (three emulated clusters with their Istio-shaped mesh /metrics), `orchestrator serve`
on them, and the Debian `prometheus` scraping the server's /metrics and the three meshes every second; the
server's gates read that Prometheus too (the environment's `prometheus:`), as in production. A release is
deployed, then a second one rolls out as a canary through the REST API (20 %, an analysis of the built-in
success-rate and p99 gates, a pause until approved, in each of the environment's two waves), and a signed
GitHub ping arrives.

Every target of every panel is interpolated as Grafana does (`tests/services/grafana.py`) for two
selections of the variables (all, and one environment, service and cluster), and sent to Prometheus: each
must be answered 200 (a query that does not parse fails the test), while the canary runs and after the
rollout. The panels that must show something then do, with values the scenario implies: the canary and
stable success rates at 100 %, their p99 near the mesh's 10 ms median, the rollouts, gates, steps,
requests, the ping and the queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.sim.client import load_running_sim
from tests.helpers import REPO, run_cli
from tests.integration.rollout_fixtures import CLUSTERS, estate_with_strategy
from tests.server_fixtures import serve_process
from tests.services import grafana
from tests.services.prometheus import PrometheusServer
from tests.webhook_helpers import SECRET, deliver

DASHBOARD = REPO / "monitoring" / "grafana" / "orchestrator.json"
CANARY = """strategy:
  canary:
    steps:
      - setWeight: 20
      - analysis:
          templates:
            - templateName: request-success-rate
            - templateName: request-duration-p99
      - pause: {}
"""
FINISHED = ("Succeeded", "Failed", "RolledBack", "Aborted")
# A user's "Last 15 minutes" on a data source whose scrape interval is Prometheus' (1 s here): Grafana's
# step is 1 s, so $__rate_interval is 4s and $__range 900s.
LAST_15_MINUTES = {"seconds": 900.0, "scrape_interval": 1.0}
EVERYTHING = {"environment": grafana.ALL, "service": grafana.ALL, "cluster": grafana.ALL}
ONE_OF_EACH = {"environment": ["local"], "service": ["api"], "cluster": ["sim-aws"]}


@dataclass
class Stack:
    base: str  # the orchestrator server
    token: str  # an admin's
    prometheus: PrometheusServer

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, f"{self.base}/api/v1{path}", headers=headers, timeout=60, **kwargs)

    def wait_for_phase(self, ref: str, phases: tuple[str, ...], timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            detail: dict[str, Any] = self.api("GET", f"/deployments/{ref}").json()
            if detail["phase"] in phases:
                return detail
            assert time.monotonic() < deadline, f"still {detail['phase']}: {detail.get('message')}"
            time.sleep(0.3)


@pytest.fixture
def stack(tmp_path: Path, running_sim: dict[str, str]) -> Iterator[Stack]:
    estate = estate_with_strategy(tmp_path / "estate", CANARY)
    env = {
        **running_sim,
        "ORCHESTRATOR_ROOT": str(estate),
        "ORCHESTRATOR_GITHUB_WEBHOOK_SECRET": SECRET.decode(),
    }
    assert run_cli("users", "create", "admin@example.com", "--role", "admin", env=env).returncode == 0
    token = run_cli("tokens", "create", "--user", "admin@example.com", env=env).stdout.strip()
    sim = load_running_sim(env["ORCHESTRATOR_STATE_DIR"])
    assert sim is not None
    with serve_process(env, tmp_path / "serve.log") as base:
        targets = [f"{base}/metrics", *(sim.metrics_endpoint(c) for c in CLUSTERS)]
        with PrometheusServer(targets, tmp_path / "prometheus") as prometheus:
            # The gates read the same Prometheus, as in production: the environment names it (the server
            # reads its checkout's configuration at each request).
            local = estate / "environments" / "local.yaml"
            local.write_text(local.read_text() + f"prometheus: {prometheus.url}\n")
            assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
            yield Stack(base, token, prometheus)


def evaluate(
    stack: Stack, dashboard: dict[str, Any], selection: dict[str, Any]
) -> dict[tuple[str, str], grafana.Answer]:
    """Every target's answer (its instant value now), after checking Prometheus takes its query as sent."""
    time_range = grafana.TimeRange(end=time.time(), **LAST_15_MINUTES)
    answers = {}
    for target in grafana.targets(dashboard):
        query = grafana.interpolate(target.expr, dashboard, selection, time_range)
        assert "$" not in query, query
        if not target.instant:  # what a time series panel sends: the range query must parse too
            assert grafana.run(stack.prometheus.url, target, query, time_range).result is not None
        answers[(target.panel, target.ref)] = grafana.instant(stack.prometheus.url, target, query, time_range)
    return answers


def positive(answer: grafana.Answer) -> bool:
    """Series, every one of them above zero."""
    return bool(answer.values()) and all(v > 0 for v in answer.values())


def some_positive(answer: grafana.Answer) -> bool:
    return any(v > 0 for v in answer.values())


def value(answer: grafana.Answer, **labels: str) -> float | None:
    """The value of the one series with these labels, None when there is none."""
    found = [
        v
        for series, v in zip(answer.result, answer.values(), strict=True)
        if all(series["metric"].get(k) == want for k, want in labels.items())
    ]
    assert len(found) <= 1, (labels, answer.result)
    return found[0] if found else None


Expected = dict[str | tuple[str, str], Callable[[grafana.Answer], bool]]


def check(answers: dict[tuple[str, str], grafana.Answer], expected: Expected) -> None:
    """Each named panel's every target (or the named target) satisfies its check; a name the dashboard
    does not have fails."""
    for key, accept in expected.items():
        found = {k: a for k, a in answers.items() if k == key or k[0] == key}
        assert found, f"no panel or target {key!r} in the dashboard"
        for (panel, ref), answer in found.items():
            assert accept(answer), f"{panel!r} {ref}: {answer.result}\n  query: {answer.query}"


def test_the_dashboard_is_a_grafana_model_with_a_prometheus_data_source_variable() -> None:
    dashboard = grafana.load(DASHBOARD)
    assert dashboard["schemaVersion"] >= 36 and dashboard["uid"] and dashboard["id"] is None
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("environment", "service", "cluster"):
        assert variables[name]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in grafana.panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], (panel["title"], target["refId"])
    titles = {p["title"] for p in grafana.panels(dashboard)}
    for wanted in (
        "Deployments by phase",
        "Rollout duration (p50, p95) over the time range",
        "Gate outcomes over the time range",
        "Success rate: canary vs stable",
        "p99 latency: canary vs stable",
    ):
        assert wanted in titles


def test_interpolation_follows_grafana() -> None:
    dashboard = {"templating": {"list": [{"name": "s", "multi": True, "includeAll": True, "allValue": ".*"}]}}
    span = grafana.TimeRange(end=0, seconds=900, scrape_interval=1)
    assert (span.step, span.rate_interval) == (1, 4)
    assert (
        grafana.interpolate("x[$__rate_interval] $__range ${__range_s}", dashboard, {}, span)
        == "x[4s] 900s 900"
    )
    default = grafana.TimeRange(end=0, seconds=3600)  # Grafana's 15 s default scrape interval, one hour
    assert grafana.builtins(default)["__rate_interval"] == "1m0s"
    assert grafana.interpolate('{a=~"$s"}', dashboard, {"s": grafana.ALL}, span) == '{a=~".*"}'
    assert grafana.interpolate('{a=~"$s"}', dashboard, {"s": ["a.b", "c"]}, span) == '{a=~"(a\\\\.b|c)"}'


def test_every_panel_query_parses_and_the_rollout_fills_the_panels(stack: Stack) -> None:
    dashboard = grafana.load(DASHBOARD)
    stack.prometheus.wait_for_scrapes()  # every series starts before the rollout (increase() needs it)

    first = stack.api(
        "POST", "/deployments", json={"service": "api", "environment": "local", "strategy": "rolling"}
    )
    assert first.status_code == 202, first.text
    assert stack.wait_for_phase(first.json()["id"], FINISHED)["phase"] == "Succeeded"
    canary = stack.api(
        "POST", "/deployments", json={"service": "api", "environment": "local", "set": ["env.RELEASE=2"]}
    )
    assert canary.status_code == 202, canary.text
    ref = canary.json()["id"]
    assert stack.wait_for_phase(ref, ("Paused", *FINISHED))["phase"] == "Paused"  # the first wave's canary

    # While the canary takes its 20 % in the first wave: canary and stable side by side.
    time_range = grafana.TimeRange(end=time.time(), **LAST_15_MINUTES)
    canary_rps = grafana.interpolate(
        next(
            t.expr
            for t in grafana.targets(dashboard)
            if t.panel.startswith("Requests per second") and t.ref == "A"
        ),
        dashboard,
        EVERYTHING,
        time_range,
    )
    stack.prometheus.wait_for_value(canary_rps, lambda v: v[0] > 0)
    for selection in (EVERYTHING, ONE_OF_EACH):
        answers = evaluate(stack, dashboard, selection)
        check(
            answers,
            {
                "Success rate: canary vs stable": lambda a: (
                    a.by("destination_service_name") == {"api": 100.0}
                ),
                "p99 latency: canary vs stable": lambda a: (
                    set(a.by("destination_service_name")) == {"api"} and all(10 < v < 50 for v in a.values())
                ),
                "Requests per second: canary vs stable": positive,
                "Deployments in flight": lambda a: (
                    bool(a.values()) and max(a.values()) == 1.0
                ),  # local Paused
            },
        )
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert "local" in grafana.variable_values(stack.prometheus.url, variables["environment"], time_range)
    assert grafana.variable_values(stack.prometheus.url, variables["service"], time_range) == ["api"]
    clusters = grafana.variable_values(stack.prometheus.url, variables["cluster"], time_range)
    assert clusters == [f"sim-{c}" for c in CLUSTERS]

    # Approved through both waves; a signed ping arrives.
    phase = "Paused"
    for _approval in range(3):  # one per wave (two), and one to spare before failing
        if phase != "Paused":
            break
        approved = stack.api("POST", f"/deployments/{ref}/approve", json={})
        assert approved.status_code == 200, approved.text
        assert approved.json()["deployment"]["phase"] == "Progressing", approved.text
        phase = stack.wait_for_phase(ref, ("Paused", *FINISHED))["phase"]
    assert phase == "Succeeded"
    measurements = stack.api("GET", f"/deployments/{ref}").json()["measurements"]
    assert measurements and {(m["data"] or {}).get("source") for m in measurements} == {"prometheus"}
    assert deliver(stack.base, {"zen": "z", "hook_id": 1}, event="ping").status_code == 200
    # Both rollouts and the ping, once the trail has settled and Prometheus has scraped it.
    stack.prometheus.wait_for_value(
        'sum(orchestrator_rollout_duration_seconds_count{phase="Succeeded"})', lambda v: v[0] >= 2
    )
    stack.prometheus.wait_for_value('sum(orchestrator_webhook_deliveries_total{outcome="ping"})')

    for selection in (EVERYTHING, ONE_OF_EACH):
        answers = evaluate(stack, dashboard, selection)
        check(
            answers,
            {
                "Deployments by phase": lambda a: value(a, phase="Succeeded") == 2.0,
                "Rollout duration (p50, p95) over the time range": lambda a: (
                    positive(a)
                    and {(s["metric"]["environment"], s["metric"]["phase"]) for s in a.result}
                    == {("local", "Succeeded")}
                ),
                "Rollouts ended over the time range": lambda a: (
                    (value(a, environment="local", phase="Succeeded") or 0) >= 2
                ),
                "Gate outcomes over the time range": lambda a: (
                    (value(a, outcome="passed") or 0) >= 2 and value(a, outcome="failed") == 0
                ),
                "Gate duration (p95) by outcome": lambda a: (
                    positive(a) and a.by("outcome").keys() == {"passed"}
                ),
                "Step duration (p50, p95)": positive,
                "HTTP requests per second by route and status": some_positive,  # Prometheus' own scrapes
                "HTTP p99 latency by route": some_positive,
                "Webhook deliveries by outcome over the time range": lambda a: (
                    positive(a)
                    and {(s["metric"]["source"], s["metric"]["outcome"]) for s in a.result}
                    == {("github", "ping")}
                ),
                "Job queue depth": lambda a: bool(a.values()) and set(a.values()) == {0.0},  # every job done
                # the new release is stable now, and still answers; the canary has no traffic left to rate
                ("Success rate: canary vs stable", "B"): lambda a: (
                    a.by("destination_service_name") == {"api": 100.0}
                ),
                ("Requests per second: canary vs stable", "B"): positive,
            },
        )
