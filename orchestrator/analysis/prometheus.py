"""The prometheus provider: one instant PromQL query, judged by the metric's conditions.

As in Argo Rollouts, `result` is a float for a scalar answer and a list of floats (one per series) for a
vector. An empty vector is `[]`, so `result[0]` cannot be computed and the measurement is an Error (retried
after 10 s, then Error past consecutiveErrorLimit), and so is `default(result[0], 0)`: `default` replaces
only nil, never an empty list or NaN. To pass on no data on purpose, say so: `len(result) == 0 ||
result[0] < 500`; for NaN (no requests in the window), `isNaN(result[0]) || result[0] >= 99`.
"""

from __future__ import annotations

from orchestrator.analysis.base import AnalysisContext, Measurement, assess, start_measurement
from orchestrator.analysis.phases import AnalysisPhase
from orchestrator.analysis.promapi import PrometheusAPI, PrometheusError
from orchestrator.analysis.templating import TemplateError
from orchestrator.config.pipeline import Metric
from orchestrator.logs import get_logger

log = get_logger(__name__)

SOURCE = "prometheus"


def prometheus_address(metric: Metric, context: AnalysisContext) -> str | None:
    """The metric's own address, else the environment's."""
    config = metric.provider.prometheus or metric.provider.judge
    own = config.address if config is not None else None
    return own or context.prometheus_url


class PrometheusMetricProvider:
    source = SOURCE

    def measure(self, metric: Metric, context: AnalysisContext) -> Measurement:
        config = metric.provider.prometheus
        assert config is not None, "the prometheus provider measures prometheus metrics"
        taking = start_measurement(metric, context, source=SOURCE, query=config.query)
        address = prometheus_address(metric, context)
        if not address:
            return taking.error(
                "no Prometheus address: set provider.prometheus.address, or the environment's prometheus"
            )
        try:
            taking.query = context.render(config.query, where="query")
        except TemplateError as exc:
            return taking.error(str(exc))
        try:
            answer = PrometheusAPI(address, timeout=context.http_timeout).query(taking.query)
        except PrometheusError as exc:
            return taking.error(str(exc))

        phase, message = assess(metric, context, answer.value)
        if phase is AnalysisPhase.ERROR and answer.value == []:
            message = f"the query returned no data (an empty vector); {message}"
        log.debug("prometheus measurement", metric=metric.name, value=answer.value, phase=phase.value)
        details: dict[str, object] = {
            "address": address,
            "resultType": answer.result_type,
            "series": answer.labels[:10],
        }
        if config.direct is not None:
            details.update(_stable_figure(config.query, context, address))
        return taking.done(phase, message, value=answer.value, details=details)


def _stable_figure(query: str, context: AnalysisContext, address: str) -> dict[str, object]:
    """For the built-in figures (the queries that select the canary by `{{canary_workload}}` and
    `{{canary_version}}`): the same query about the stable, for comparison only — it never decides the
    phase, and a failure only says so."""
    stable = context.as_stable()
    if stable is None:
        return {}
    try:
        rendered = stable.render(query, where="query")
        answer = PrometheusAPI(address, timeout=context.http_timeout).query(rendered)
    except (PrometheusError, TemplateError) as exc:
        return {"stable_error": str(exc)}
    return {"stable": answer.value}
