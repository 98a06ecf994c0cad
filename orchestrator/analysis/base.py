"""The one interface every analysis provider implements, and the values that cross it.

A provider takes one measurement of one metric: `measure(metric, context) -> Measurement`. It never raises
for a failure it can name (a refused connection, a bad status, an empty result): those are Error
measurements, which the analysis run counts against `consecutiveErrorLimit`. The shape is Argo Rollouts'
`metricproviders/<name>/` Provider.Run and Flagger's `pkg/metrics/providers/`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.analysis.conditions import assess_result
from orchestrator.analysis.phases import AnalysisPhase
from orchestrator.analysis.templating import TemplateError, render_template
from orchestrator.config.pipeline import Metric

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

MeasurementValue = float | str | list[Any] | dict[str, Any] | None


class Clock(Protocol):
    """Time as the analysis sees it; tests inject a fake one so they never sleep."""

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


@dataclass(frozen=True)
class Measurement:
    """One observation of one metric: what was asked, what came back, and the verdict.

    `value` is what conditions saw as `result`: a number, a list (a Prometheus vector), or for webhooks a
    JSON object. `source` says where it came from: prometheus, direct (scraped /metrics), kubernetes,
    webhook or judge. `details` holds provider specifics (the judge's per-metric classifications, ...).
    """

    metric: str
    phase: AnalysisPhase
    value: MeasurementValue
    query: str
    message: str
    started_at: datetime
    finished_at: datetime
    source: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for the store and `-o json` (NaN and infinities become strings)."""
        return {
            "metric": self.metric,
            "phase": self.phase.value,
            "value": _json_safe(self.value),
            "query": self.query,
            "message": self.message,
            "startedAt": self.started_at.isoformat(),
            "finishedAt": self.finished_at.isoformat(),
            "source": self.source,
            "details": _json_safe(dict(self.details)),
        }


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class AnalysisContext:
    """Everything a provider needs to know about the rollout it judges.

    `canary_workload`/`stable_workload` are Deployment names (default: the service). `window` is the PromQL
    range used by `{{window}}` (an `args.window` argument wins). `prometheus_url` is the environment's
    Prometheus; `metrics_urls` are Istio-shaped /metrics endpoints the "direct" source scrapes when there is
    no Prometheus. `api_client` is the cluster's kubernetes ApiClient, for the kubernetes provider.
    """

    service: str
    namespace: str
    environment: str = ""
    cluster: str = ""
    canary_version: str = ""
    stable_version: str = ""
    canary_workload: str | None = None
    stable_workload: str | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    window: str = "1m"
    prometheus_url: str | None = None
    metrics_urls: tuple[str, ...] = ()
    api_client: ApiClient | None = None
    phase: str = "Progressing"
    http_timeout: float = 10.0
    clock: Clock = field(default_factory=SystemClock)

    @property
    def canary_workload_name(self) -> str:
        return self.canary_workload or self.service

    @property
    def stable_workload_name(self) -> str:
        return self.stable_workload or self.service

    def as_stable(self) -> AnalysisContext | None:
        """The same context aimed at the stable side (its version and workload in the canary's place), to
        measure the stable's figure beside the canary's for comparison; None without a distinct stable."""
        if not self.stable_version or self.stable_version == self.canary_version:
            return None
        return replace(self, canary_version=self.stable_version, canary_workload=self.stable_workload_name)

    def variables(self, version: str | None = None) -> dict[str, str]:
        """The names `{{...}}` placeholders can use; `version` is the canary's unless given."""
        return {
            "service": self.service,
            "namespace": self.namespace,
            "environment": self.environment,
            "cluster": self.cluster,
            "version": self.canary_version if version is None else version,
            "canary_version": self.canary_version,
            "stable_version": self.stable_version,
            "canary_workload": self.canary_workload_name,
            "stable_workload": self.stable_workload_name,
            "workload": self.canary_workload_name,
            "window": self.args.get("window", self.window),
        }

    def render(self, text: str, *, where: str, version: str | None = None) -> str:
        """`text` with placeholders filled from this context (TemplateError when one is unknown)."""
        return render_template(text, self.variables(version), self.args, where=where)


class MetricProvider(Protocol):
    """Takes one measurement of `metric`. Instances live for one analysis run and may keep state in it."""

    source: str

    def measure(self, metric: Metric, context: AnalysisContext) -> Measurement: ...


@dataclass
class MeasurementInProgress:
    """A measurement being taken: what it measures and when it started. Every provider ends one with
    `done(...)` or `error(...)`, stamped with the context's clock; `query` is what it asks, updated once
    the provider knows it (a rendered PromQL, the URL called)."""

    metric: Metric
    context: AnalysisContext
    source: str
    query: str
    started_at: datetime

    def done(
        self,
        phase: AnalysisPhase,
        message: str,
        *,
        value: MeasurementValue = None,
        details: Mapping[str, Any] | None = None,
    ) -> Measurement:
        return Measurement(
            metric=self.metric.name,
            phase=phase,
            value=value,
            query=self.query,
            message=message,
            started_at=self.started_at,
            finished_at=self.context.clock.now(),
            source=self.source,
            details=details or {},
        )

    def error(self, message: str, *, details: Mapping[str, Any] | None = None) -> Measurement:
        """An Error measurement: counted against consecutiveErrorLimit, retried after 10 s."""
        return self.done(AnalysisPhase.ERROR, message, details=details)


def start_measurement(
    metric: Metric, context: AnalysisContext, *, source: str, query: str
) -> MeasurementInProgress:
    """Begin measuring `metric` now (on the context's clock)."""
    return MeasurementInProgress(
        metric=metric, context=context, source=source, query=query, started_at=context.clock.now()
    )


def assess(metric: Metric, context: AnalysisContext, result: Any) -> tuple[AnalysisPhase, str]:
    """The phase `result` earns under the metric's conditions (with their placeholders filled)."""
    try:
        success = (
            context.render(metric.success_condition, where="successCondition")
            if metric.success_condition
            else None
        )
        failure = (
            context.render(metric.failure_condition, where="failureCondition")
            if metric.failure_condition
            else None
        )
    except TemplateError as exc:
        return AnalysisPhase.ERROR, str(exc)
    return assess_result(result, success, failure)
