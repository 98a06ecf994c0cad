"""The "direct" source: the built-in gates computed from two scrapes of Istio-shaped /metrics.

The endpoint is real (prometheus_client over HTTP on 127.0.0.1); the requests it counts are recorded by
the test while the provider "sleeps" on a fake clock, so the expected figures are exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from orchestrator.analysis import (
    AnalysisContext,
    AnalysisPhase,
    provider_name,
    resolve_analysis,
    run_analysis,
)
from orchestrator.analysis.direct import (
    IstioSelector,
    MetricsScrapeProvider,
    Scrape,
    histogram_quantile,
    latency_quantile,
    success_rate,
)
from orchestrator.config.pipeline import AnalysisArg, AnalysisRef, AnalysisStep, Metric
from tests.services.prometheus import IstioMetrics
from tests.unit.test_analysis_run import FakeClock

NAMESPACE, SERVICE = "shop", "api"


@pytest.fixture
def mesh() -> Iterator[IstioMetrics]:
    metrics = IstioMetrics().start()
    yield metrics
    metrics.stop()


def serve(
    mesh: IstioMetrics, version: str, *, ok: int = 0, errors: int = 0, latency_ms: float = 10.0
) -> None:
    workload = "api-canary" if version == "v2" else "api"
    for index in range(ok + errors):
        mesh.record(
            namespace=NAMESPACE,
            workload=workload,
            version=version,
            service=SERVICE,
            code=500 if index < errors else 200,
            latency_ms=latency_ms,
        )


def builtin(name: str, **args: str) -> tuple[list[Metric], dict[str, str]]:
    step = AnalysisStep(
        templates=[
            AnalysisRef(template_name=name, args=[AnalysisArg(name=k, value=v) for k, v in args.items()])
        ]
    )
    resolved = resolve_analysis(step, {})
    return resolved.metrics, resolved.args


def context(mesh: IstioMetrics, clock: FakeClock, args: dict[str, str]) -> AnalysisContext:
    return AnalysisContext(
        service=SERVICE,
        namespace=NAMESPACE,
        canary_version="v2",
        stable_version="v1",
        canary_workload="api-canary",
        args=args,
        window="10s",
        metrics_urls=(mesh.url,),
        clock=clock,
    )


def test_success_rate_is_computed_from_the_requests_between_two_scrapes(mesh: IstioMetrics) -> None:
    serve(mesh, "v2", ok=500, errors=500)  # history before the analysis does not count

    # while the provider waits between its two scrapes, the canary answers 70 OK and 30 errors;
    # stable's failures and another reporter's counts are not the canary's
    def traffic(_: float) -> None:
        serve(mesh, "v2", ok=70, errors=30)
        serve(mesh, "v1", ok=10, errors=90)

    clock = FakeClock(on_sleep=traffic)
    metrics, args = builtin("request-success-rate")
    ctx = context(mesh, clock, args)
    assert provider_name(metrics[0], ctx) == "direct"  # no Prometheus address: scrape directly
    measurement = MetricsScrapeProvider().measure(metrics[0], ctx)
    assert measurement.source == "direct"
    assert measurement.value == [pytest.approx(70.0)]
    assert measurement.phase is AnalysisPhase.FAILED  # 70 % < 99 %
    assert clock.slept == [5.0]  # min(window 10s, interval 5s)
    assert 'destination_version="v2"' in measurement.query and mesh.url in measurement.query


def test_later_measurements_use_the_previous_scrape(mesh: IstioMetrics) -> None:
    clock = FakeClock(on_sleep=lambda _: serve(mesh, "v2", ok=100))
    metrics, args = builtin("request-success-rate")
    ctx = context(mesh, clock, args)
    provider = MetricsScrapeProvider()
    first = provider.measure(metrics[0], ctx)
    assert first.phase is AnalysisPhase.SUCCESSFUL and first.value == [100.0]
    clock.on_sleep = None
    clock.sleep(5)  # the run's interval, during which the canary answers 995 OK and 5 errors
    serve(mesh, "v2", ok=995, errors=5)
    second = provider.measure(metrics[0], ctx)
    assert second.value == [pytest.approx(99.5)]
    assert second.phase is AnalysisPhase.SUCCESSFUL  # 99.5 >= 99
    assert clock.slept == [5.0, 5.0]  # no extra wait: the first measurement's scrape is the baseline


def test_p99_latency_from_bucket_increases(mesh: IstioMetrics) -> None:
    def traffic(_: float) -> None:
        serve(mesh, "v2", ok=990, latency_ms=20.0)  # in the (10, 25] bucket
        serve(mesh, "v2", ok=10, latency_ms=800.0)  # in the (500, 1000] bucket

    clock = FakeClock(on_sleep=traffic)
    metrics, args = builtin("request-duration-p99", **{"max-p99-ms": "300"})
    measurement = MetricsScrapeProvider().measure(metrics[0], context(mesh, clock, args))
    # rank 990 of 1000 is the last observation of the (10, 25] bucket: its upper bound
    assert measurement.value == [pytest.approx(25.0)]
    assert measurement.phase is AnalysisPhase.SUCCESSFUL
    # a fresh run over a slow canary
    clock.on_sleep = lambda _: serve(mesh, "v2", ok=100, latency_ms=800.0)
    measurement = MetricsScrapeProvider().measure(metrics[0], context(mesh, clock, args))
    assert isinstance(measurement.value, list) and 500 < measurement.value[0] <= 1000
    assert measurement.phase is AnalysisPhase.FAILED


def test_no_series_is_an_error_and_no_requests_is_inconclusive(mesh: IstioMetrics) -> None:
    clock = FakeClock()
    metrics, args = builtin("request-success-rate")
    ctx = context(mesh, clock, args)
    empty = MetricsScrapeProvider().measure(metrics[0], ctx)
    assert empty.value == [] and empty.phase is AnalysisPhase.ERROR
    assert "no matching series" in empty.message
    serve(mesh, "v2", ok=10)  # the series exists now, but nothing arrives between the scrapes
    quiet = MetricsScrapeProvider().measure(metrics[0], ctx)
    assert isinstance(quiet.value, list) and math.isnan(quiet.value[0])
    assert quiet.phase is AnalysisPhase.INCONCLUSIVE


def test_an_unreachable_endpoint_is_an_error() -> None:
    clock = FakeClock()
    metrics, args = builtin("request-success-rate")
    ctx = AnalysisContext(
        service=SERVICE,
        namespace=NAMESPACE,
        canary_version="v2",
        args=args,
        metrics_urls=("http://127.0.0.1:1/metrics",),
        clock=clock,
    )
    measurement = MetricsScrapeProvider().measure(metrics[0], ctx)
    assert measurement.phase is AnalysisPhase.ERROR
    assert "cannot scrape metrics" in measurement.message


def test_a_query_without_a_direct_equivalent_needs_prometheus(mesh: IstioMetrics) -> None:
    metric = Metric.model_validate(
        {
            "name": "custom",
            "provider": {"prometheus": {"query": "sum(up)"}},
            "successCondition": "result[0] > 0",
        }
    )
    ctx = context(mesh, FakeClock(), {})
    assert provider_name(metric, ctx) == "prometheus"
    outcome = run_analysis([metric], ctx)
    assert outcome.phase is AnalysisPhase.ERROR
    assert "no Prometheus address" in outcome.measurements[0].message


def test_a_whole_run_on_the_direct_source_fails_a_bad_canary(mesh: IstioMetrics) -> None:
    clock = FakeClock(on_sleep=lambda _: serve(mesh, "v2", ok=60, errors=40))
    metrics, args = builtin("request-success-rate")
    outcome = run_analysis(metrics, context(mesh, clock, args))
    assert outcome.phase is AnalysisPhase.FAILED
    assert outcome.sources == {"request-success-rate": "direct"}
    assert len(outcome.measurements) == 1  # failureLimit 0: the first failure decides


# --- the arithmetic, against Prometheus' definitions -------------------------------------------------------


def test_histogram_quantile_matches_prometheus() -> None:
    inf = math.inf
    buckets = [(10.0, 50.0), (25.0, 90.0), (100.0, 100.0), (inf, 100.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(10.0)  # rank 50: top of the first bucket
    assert histogram_quantile(0.7, buckets) == pytest.approx(10 + 15 * (20 / 40))  # linear within (10, 25]
    assert histogram_quantile(0.99, buckets) == pytest.approx(25 + 75 * (9 / 10))
    # the quantile lands in +Inf: the highest finite bound, as Prometheus answers
    assert histogram_quantile(0.99, [(10.0, 50.0), (inf, 100.0)]) == 10.0
    assert math.isnan(histogram_quantile(0.5, [(10.0, 0.0), (inf, 0.0)]))
    assert math.isnan(histogram_quantile(0.5, [(10.0, 1.0)]))  # no +Inf bucket


def test_counter_resets_count_from_zero() -> None:
    from datetime import UTC, datetime

    selector = IstioSelector(namespace="shop", workload_pattern="api-canary", version="v2")
    labels = (
        ("destination_version", "v2"),
        ("destination_workload", "api-canary"),
        ("destination_workload_namespace", "shop"),
        ("reporter", "destination"),
    )
    ok = ("istio_requests_total", (*labels, ("response_code", "200")))
    bad = ("istio_requests_total", (*labels, ("response_code", "503")))
    at = datetime(2024, 1, 1, tzinfo=UTC)
    before = Scrape(at, {ok: 1000.0, bad: 10.0})
    after = Scrape(at, {ok: 30.0, bad: 20.0})  # the pod restarted: ok went back to 0, then to 30
    assert success_rate(before, after, selector) == [pytest.approx(30 / 40 * 100)]
    assert latency_quantile(0.99, before, after, selector) == []
