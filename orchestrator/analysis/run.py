"""An analysis run: measure a list of metrics on their schedules and decide, with Argo Rollouts' rules.

Per metric (Argo Rollouts' AnalysisRun semantics):
- the first measurement is taken `initialDelay` after the run starts, then one every `interval` after the
  previous one finished; after an Error the next try comes after `error_retry_interval` (Argo: 10 s), but
  never later than the metric's own interval;
- `count` measurements that are not errors complete the metric as Successful; without a count, one
  measurement if no interval was written, else measurements go on until the run is stopped;
- more Failed measurements than `failureLimit` → the metric is Failed; more Inconclusive than
  `inconclusiveLimit` → Inconclusive; more Errors *in a row* than `consecutiveErrorLimit` → Error.
The run ends when every metric is complete, or as soon as one is Failed, Inconclusive or Error (the others
stop and count as Successful), or when `stop()` says so. Its phase is the worst metric phase, in Argo's
order Successful < Inconclusive < Error < Failed. A caller treats Error like Failed (fail safe).

Time comes from the context's clock, so tests drive a run with a fake clock and never sleep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from orchestrator.analysis.base import AnalysisContext, Measurement, MetricProvider, finish
from orchestrator.analysis.phases import AnalysisPhase
from orchestrator.analysis.registry import PROVIDERS, provider_name
from orchestrator.config.pipeline import Metric

log = structlog.get_logger(__name__)

DEFAULT_ERROR_RETRY_SECONDS = 10.0
STOP_POLL_SECONDS = 1.0


def effective_count(metric: Metric) -> int | None:
    """How many measurements complete the metric; None means "until stopped" (Argo's EffectiveCount)."""
    if metric.count:
        return metric.count
    # `interval` not written in the configuration: a single measurement, as in Argo Rollouts.
    return 1 if "interval" not in metric.model_fields_set else None


@dataclass
class MetricResult:
    """One metric's progress in a run: its measurements, counters and phase."""

    metric: Metric
    source: str
    phase: AnalysisPhase = AnalysisPhase.PENDING
    message: str = ""
    measurements: list[Measurement] = field(default_factory=list)
    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    next_at: datetime | None = None

    def record(self, measurement: Measurement) -> None:
        self.measurements.append(measurement)
        if measurement.phase is AnalysisPhase.ERROR:
            self.errors += 1
            self.consecutive_errors += 1
            return
        self.count += 1
        self.consecutive_errors = 0
        if measurement.phase is AnalysisPhase.SUCCESSFUL:
            self.successful += 1
        elif measurement.phase is AnalysisPhase.FAILED:
            self.failed += 1
        elif measurement.phase is AnalysisPhase.INCONCLUSIVE:
            self.inconclusive += 1


def assess_metric(result: MetricResult) -> tuple[AnalysisPhase, str]:
    """Argo's assessMetricStatus for a metric with at least one measurement, not terminating."""
    metric = result.metric
    phase, reason = AnalysisPhase.RUNNING, ""
    if result.failed > metric.failure_limit:
        phase, reason = (
            AnalysisPhase.FAILED,
            f"failed ({result.failed}) > failureLimit ({metric.failure_limit})",
        )
    if result.inconclusive > metric.inconclusive_limit:
        phase = AnalysisPhase.INCONCLUSIVE
        reason = f"inconclusive ({result.inconclusive}) > inconclusiveLimit ({metric.inconclusive_limit})"
    if result.consecutive_errors > metric.consecutive_error_limit:
        phase = AnalysisPhase.ERROR
        reason = (
            f"consecutiveErrors ({result.consecutive_errors}) > "
            f"consecutiveErrorLimit ({metric.consecutive_error_limit})"
        )
    if phase is not AnalysisPhase.RUNNING:
        return phase, reason
    count = effective_count(metric)
    if count is not None and result.count >= count:
        return AnalysisPhase.SUCCESSFUL, f"count ({count}) reached"
    return AnalysisPhase.RUNNING, ""


@dataclass(frozen=True)
class AnalysisOutcome:
    """How a run ended: the overall phase, why, and every metric's result (with all measurements)."""

    phase: AnalysisPhase
    message: str
    results: list[MetricResult]

    @property
    def measurements(self) -> list[Measurement]:
        return sorted((m for r in self.results for m in r.measurements), key=lambda m: m.started_at)

    @property
    def sources(self) -> dict[str, str]:
        """Metric name → where its figures came from (prometheus, direct, kubernetes, webhook, judge)."""
        return {r.metric.name: r.source for r in self.results}

    @property
    def passed(self) -> bool:
        return self.phase is AnalysisPhase.SUCCESSFUL


class AnalysisRun:
    """Iterate `measurements()` to run; each Measurement is yielded as soon as it is taken, and `outcome`
    is set when the iteration ends."""

    def __init__(
        self,
        metrics: Sequence[Metric],
        context: AnalysisContext,
        *,
        stop: Callable[[], bool] | None = None,
        error_retry_interval: float = DEFAULT_ERROR_RETRY_SECONDS,
        providers: Mapping[str, Callable[[], MetricProvider]] | None = None,
    ) -> None:
        self.context = context
        self.stop = stop
        self.error_retry_interval = error_retry_interval
        factories = providers or PROVIDERS
        self.results = [MetricResult(metric=m, source=provider_name(m, context)) for m in metrics]
        self._providers = {id(r): factories[r.source]() for r in self.results}
        self.outcome: AnalysisOutcome | None = None

    def measurements(self) -> Iterator[Measurement]:
        clock = self.context.clock
        started = clock.now()
        for result in self.results:
            result.next_at = started + timedelta(seconds=result.metric.initial_delay)
        terminating, stopped = False, False
        while True:
            if not terminating and self.stop is not None and self.stop():
                terminating, stopped = True, True
            if not terminating:
                for result in self.results:
                    if result.phase.completed or result.next_at is None or result.next_at > clock.now():
                        continue
                    measurement = self._measure(result)
                    result.record(measurement)
                    yield measurement
                    phase, reason = assess_metric(result)
                    if phase.completed:
                        result.phase, result.message = phase, reason
                        log.info(
                            "metric completed", metric=result.metric.name, phase=phase.value, reason=reason
                        )
                        if phase is not AnalysisPhase.SUCCESSFUL:
                            terminating = True
                            break
                    else:
                        result.phase = AnalysisPhase.RUNNING
                        result.next_at = measurement.finished_at + timedelta(seconds=self._delay(result))
            if terminating:
                for result in self.results:
                    if not result.phase.completed:
                        # Argo: a metric still running when the run stops has not failed.
                        result.phase = AnalysisPhase.SUCCESSFUL
                        result.message = "run stopped" if stopped else "run ended by another metric"
            if all(r.phase.completed for r in self.results):
                self.outcome = self._outcome()
                return
            wake = min(r.next_at for r in self.results if not r.phase.completed and r.next_at is not None)
            wait = (wake - clock.now()).total_seconds()
            if self.stop is not None:
                wait = min(wait, STOP_POLL_SECONDS)
            if wait > 0:
                clock.sleep(wait)

    def run(self, on_measurement: Callable[[Measurement], None] | None = None) -> AnalysisOutcome:
        for measurement in self.measurements():
            if on_measurement is not None:
                on_measurement(measurement)
        assert self.outcome is not None
        return self.outcome

    def _delay(self, result: MetricResult) -> float:
        interval = result.metric.interval
        if result.measurements[-1].phase is AnalysisPhase.ERROR:
            return max(0.0, min(self.error_retry_interval, interval))
        return max(0.0, interval)

    def _measure(self, result: MetricResult) -> Measurement:
        provider = self._providers[id(result)]
        started = self.context.clock.now()
        try:
            return provider.measure(result.metric, self.context)
        except Exception as exc:  # a provider bug must fail the gate safely, never crash the rollout
            log.exception("analysis provider failed", metric=result.metric.name, source=result.source)
            return finish(
                result.metric,
                self.context,
                phase=AnalysisPhase.ERROR,
                started_at=started,
                source=result.source,
                query="",
                message=f"the {result.source} provider failed: {type(exc).__name__}: {exc}",
            )

    def _outcome(self) -> AnalysisOutcome:
        worst: MetricResult | None = None
        for result in self.results:
            if worst is None or result.phase.is_worse_than(worst.phase):
                worst = result
        if worst is None:
            return AnalysisOutcome(AnalysisPhase.SUCCESSFUL, "no metrics to measure", self.results)
        if worst.phase is AnalysisPhase.SUCCESSFUL:
            names = ", ".join(r.metric.name for r in self.results)
            return AnalysisOutcome(AnalysisPhase.SUCCESSFUL, f"all metrics passed: {names}", self.results)
        message = f"metric {worst.metric.name!r} assessed {worst.phase.value} due to {worst.message}"
        if worst.measurements and worst.measurements[-1].message:
            message += f": {worst.measurements[-1].message}"
        return AnalysisOutcome(worst.phase, message, self.results)


def run_analysis(
    metrics: Sequence[Metric],
    context: AnalysisContext,
    *,
    on_measurement: Callable[[Measurement], None] | None = None,
    stop: Callable[[], bool] | None = None,
    error_retry_interval: float = DEFAULT_ERROR_RETRY_SECONDS,
) -> AnalysisOutcome:
    """Run the metrics to a verdict; `on_measurement` sees (and may store) every measurement as taken."""
    run = AnalysisRun(metrics, context, stop=stop, error_retry_interval=error_retry_interval)
    return run.run(on_measurement)
