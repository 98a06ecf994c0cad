"""An analysis run: measure a list of metrics on their schedules and decide, with Argo Rollouts' rules.

Per metric (Argo Rollouts' AnalysisRun controller, `analysis/analysis.go`):
- the first measurement is taken `initialDelay` after the run starts, then one every `interval` after the
  previous one finished; after an Error the next try comes 10 s later whatever the interval (Argo's
  DefaultErrorRetryInterval), so a 2 s interval does not spend `consecutiveErrorLimit` in seconds;
- `count` measurements that are not errors complete the metric; `count: 0` or no count means unset: one
  measurement if no interval was written, else measurements go on until the run is stopped;
- more Failed measurements than `failureLimit` (unless it is -1) → Failed; more Inconclusive than
  `inconclusiveLimit` → Inconclusive; more Errors *in a row* than `consecutiveErrorLimit` → Error (checked
  in that order, the last that applies wins);
- `consecutiveSuccessLimit` successes in a row → Successful; a count reached without them → Inconclusive
  while the failure limit is on, Failed when it is off (-1).
Every metric that is due is measured and assessed before the run acts on any verdict, so two metrics
finishing at the same tick give the worse phase whichever is listed first. The run ends when every metric
is complete, or once a metric is Failed, Inconclusive or Error (the others then stop and count as
Successful, as Argo terminates them), or when `stop()` says so. Its phase is the worst metric phase in
Argo's order Successful < Inconclusive < Error < Failed. Metrics named by a `dryRun` rule are measured and
recorded the same way but never decide the run nor end it early; their phases are summed up in the message.
A caller treats Error like Failed (fail safe) and Inconclusive as "a person decides".

Runs measuring side by side (one per cluster of a gate) share a `Siblings`: the first verdict that decides
the gate stops them all, and no run starts a measurement after the one that decided finished.

Time comes from the context's clock, so tests drive a run with a fake clock and never sleep.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from orchestrator.analysis.base import AnalysisContext, Measurement, MetricProvider, start_measurement
from orchestrator.analysis.phases import AnalysisPhase
from orchestrator.analysis.registry import PROVIDERS, provider_name
from orchestrator.config.pipeline import Metric
from orchestrator.logs import get_logger

log = get_logger(__name__)

DEFAULT_ERROR_RETRY_SECONDS = 10.0
STOP_POLL_SECONDS = 1.0


def effective_count(metric: Metric) -> int | None:
    """How many measurements complete the metric; None means "until stopped" (Argo's EffectiveCount)."""
    if metric.count:  # 0 means unset, as in Argo
        return metric.count
    # `interval` not written in the configuration: a single measurement, as in Argo Rollouts.
    return 1 if "interval" not in metric.model_fields_set else None


@dataclass
class MetricResult:
    """One metric's progress in a run: its measurements, counters and phase."""

    metric: Metric
    source: str
    dry_run: bool = False
    phase: AnalysisPhase = AnalysisPhase.PENDING
    message: str = ""
    measurements: list[Measurement] = field(default_factory=list)
    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    consecutive_successes: int = 0
    next_at: datetime | None = None

    def record(self, measurement: Measurement) -> None:
        self.measurements.append(measurement)
        if measurement.phase is AnalysisPhase.ERROR:
            self.errors += 1
            self.consecutive_errors += 1
            self.consecutive_successes = 0
            return
        self.count += 1
        self.consecutive_errors = 0
        if measurement.phase is AnalysisPhase.SUCCESSFUL:
            self.successful += 1
            self.consecutive_successes += 1
            return
        self.consecutive_successes = 0
        if measurement.phase is AnalysisPhase.FAILED:
            self.failed += 1
        elif measurement.phase is AnalysisPhase.INCONCLUSIVE:
            self.inconclusive += 1


def limits_exceeded(result: MetricResult) -> tuple[AnalysisPhase | None, str]:
    """Argo's assessMetricFailureInconclusiveOrError: the limit a metric is past, if any (last one wins)."""
    metric = result.metric
    phase: AnalysisPhase | None = None
    reason = ""
    if metric.failure_limit >= 0 and result.failed > metric.failure_limit:
        phase = AnalysisPhase.FAILED
        reason = f"failed ({result.failed}) > failureLimit ({metric.failure_limit})"
    if result.inconclusive > metric.inconclusive_limit:
        phase = AnalysisPhase.INCONCLUSIVE
        reason = f"inconclusive ({result.inconclusive}) > inconclusiveLimit ({metric.inconclusive_limit})"
    if result.consecutive_errors > metric.consecutive_error_limit:
        phase = AnalysisPhase.ERROR
        reason = (
            f"consecutiveErrors ({result.consecutive_errors}) > "
            f"consecutiveErrorLimit ({metric.consecutive_error_limit})"
        )
    return phase, reason


def assess_metric(result: MetricResult, *, terminating: bool = False) -> tuple[AnalysisPhase, str]:
    """Argo's assessMetricStatus for a metric with at least one measurement."""
    metric = result.metric
    phase, reason = limits_exceeded(result)
    if phase is not None:
        return phase, reason
    success_limit = metric.consecutive_success_limit
    if success_limit > 0 and result.consecutive_successes >= success_limit:
        return AnalysisPhase.SUCCESSFUL, f"consecutiveSuccessLimit ({success_limit}) reached"
    count = effective_count(metric)
    if count is not None and result.count >= count:
        if success_limit > 0 and metric.failure_limit >= 0:
            return (
                AnalysisPhase.INCONCLUSIVE,
                f"count ({count}) reached without consecutiveSuccessLimit ({success_limit}), "
                f"and failureLimit ({metric.failure_limit}) not exceeded",
            )
        if success_limit > 0:
            return (
                AnalysisPhase.FAILED,
                f"count ({count}) reached without consecutiveSuccessLimit ({success_limit})",
            )
        return AnalysisPhase.SUCCESSFUL, f"count ({count}) reached"
    if terminating:
        return AnalysisPhase.SUCCESSFUL, "run terminated"
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


class Siblings:
    """Analysis runs side by side (one per cluster of a gate) that stop together at the first verdict
    deciding the gate (`decides`). Under one lock, held for no I/O, a run stamps each measurement's start
    (refused once another run decided) and settles each measurement it took: its finish stamped, its
    metric assessed and, when that decides, the gate decided. So no run starts a measurement after the one
    that decided the gate finished: the stop cannot race the measurement that caused it."""

    def __init__(self, decides: Callable[[AnalysisPhase], bool]) -> None:
        self._decides = decides
        self._lock = threading.Lock()
        self._decider: object | None = None

    def stopped_for(self, run: object) -> bool:
        """Whether another run decided the gate (this run finishes what is due in its round)."""
        return self._decider is not None and self._decider is not run

    def begin(self, run: object, now: Callable[[], datetime]) -> datetime | None:
        """The start of `run`'s next measurement, or None when another run decided the gate."""
        with self._lock:
            return None if self.stopped_for(run) else now()

    @contextmanager
    def settling(self, run: object) -> Iterator[Callable[[AnalysisPhase | None], None]]:
        """Hold the lock while `run` stamps, records and assesses a measurement; the callback takes the
        phase its metric completed with (None: still running) and decides the gate when that decides."""
        with self._lock:
            yield lambda phase: self._decide(run, phase)

    def offer(self, phase: AnalysisPhase) -> None:
        """A finished run's outcome (a limit can also be passed as a run is stopped, past any settle)."""
        with self.settling(self) as decide:
            decide(phase)

    def _decide(self, run: object, phase: AnalysisPhase | None) -> None:
        if phase is not None and self._decider is None and self._decides(phase):
            self._decider = run


class AnalysisRun:
    """Iterate `measurements()` to run; each round's Measurements are yielded once they are taken and
    assessed, and `outcome` is set when the iteration ends."""

    def __init__(
        self,
        metrics: Sequence[Metric],
        context: AnalysisContext,
        *,
        stop: Callable[[], bool] | None = None,
        error_retry_interval: float = DEFAULT_ERROR_RETRY_SECONDS,
        providers: Mapping[str, Callable[[], MetricProvider]] | None = None,
        dry_run: Collection[str] = (),
        siblings: Siblings | None = None,
    ) -> None:
        self.context = context
        self.stop = stop
        self.siblings = siblings if siblings is not None else Siblings(lambda _phase: False)
        self._polls = stop is not None or siblings is not None  # sleeps are cut short to look
        self.error_retry_interval = error_retry_interval
        factories = providers or PROVIDERS
        self.results = [
            MetricResult(metric=m, source=provider_name(m, context), dry_run=m.name in dry_run)
            for m in metrics
        ]
        self._providers = {id(r): factories[r.source]() for r in self.results}
        self.outcome: AnalysisOutcome | None = None

    def measurements(self) -> Iterator[Measurement]:
        clock = self.context.clock
        started = clock.now()
        for result in self.results:
            result.next_at = started + timedelta(seconds=result.metric.initial_delay)
        terminating, stopped = False, False
        while True:
            halted = self.siblings.stopped_for(self) or (self.stop is not None and self.stop())
            if not terminating and halted:
                terminating, stopped = True, True
            if not terminating:
                # Every metric that is due is measured (Argo takes them in parallel), each assessed as it
                # comes in; the measurements are yielded (and stored) once the round is settled.
                due = [
                    r
                    for r in self.results
                    if not r.phase.completed and r.next_at is not None and r.next_at <= clock.now()
                ]
                taken: list[Measurement] = []
                for result in due:
                    began = self.siblings.begin(self, clock.now)
                    if began is None:
                        terminating, stopped = True, True
                        break
                    measured = self._measure(result)
                    with self.siblings.settling(self) as decide:
                        measurement = replace(measured, started_at=began, finished_at=clock.now())
                        result.record(measurement)
                        taken.append(measurement)
                        verdict = self._assess(result)
                        decide(verdict)
                    if verdict is not None and verdict is not AnalysisPhase.SUCCESSFUL:
                        terminating = True  # once the round is settled: the others due still measure
                yield from taken
            if terminating:
                for result in self.results:
                    if not result.phase.completed:
                        # Argo: a metric still running when the run stops has not failed.
                        if result.measurements:
                            phase, reason = assess_metric(result, terminating=True)
                        else:
                            phase, reason = AnalysisPhase.SUCCESSFUL, "run terminated before measuring"
                        result.phase = phase
                        result.message = (
                            reason
                            if phase is not AnalysisPhase.SUCCESSFUL
                            else ("run stopped" if stopped else "run ended by another metric")
                        )
            if all(r.phase.completed for r in self.results):
                self.outcome = self._outcome()
                return
            wake = min(r.next_at for r in self.results if not r.phase.completed and r.next_at is not None)
            wait = (wake - clock.now()).total_seconds()
            if self._polls:
                wait = min(wait, STOP_POLL_SECONDS)
            if wait > 0:
                clock.sleep(wait)

    def run(self, on_measurement: Callable[[Measurement], None] | None = None) -> AnalysisOutcome:
        for measurement in self.measurements():
            if on_measurement is not None:
                on_measurement(measurement)
        assert self.outcome is not None
        return self.outcome

    def _assess(self, result: MetricResult) -> AnalysisPhase | None:
        """Assess `result` after a measurement; the phase it completed with (None: still running). A
        dry-run metric's phase never decides."""
        phase, reason = assess_metric(result)
        if not phase.completed:
            result.phase = AnalysisPhase.RUNNING
            result.next_at = result.measurements[-1].finished_at + timedelta(seconds=self._delay(result))
            return None
        result.phase, result.message = phase, reason
        log.info(
            "metric completed",
            metric=result.metric.name,
            phase=phase.value,
            reason=reason,
            dry_run=result.dry_run,
        )
        return None if result.dry_run else phase

    def _delay(self, result: MetricResult) -> float:
        if result.measurements[-1].phase is AnalysisPhase.ERROR:
            return max(0.0, self.error_retry_interval)
        return max(0.0, result.metric.interval)

    def _measure(self, result: MetricResult) -> Measurement:
        provider = self._providers[id(result)]
        taking = start_measurement(result.metric, self.context, source=result.source, query="")
        try:
            return provider.measure(result.metric, self.context)
        except Exception as exc:  # a provider bug must fail the gate safely, never crash the rollout
            log.exception("analysis provider failed", metric=result.metric.name, source=result.source)
            return taking.error(f"the {result.source} provider failed: {type(exc).__name__}: {exc}")

    def _outcome(self) -> AnalysisOutcome:
        deciding = [r for r in self.results if not r.dry_run]
        worst: MetricResult | None = None
        for result in deciding:
            if worst is None or result.phase.is_worse_than(worst.phase):
                worst = result
        dry = _dry_run_text(self.results)
        if worst is None:
            text = "no metrics decide this analysis" if self.results else "no metrics to measure"
            return AnalysisOutcome(AnalysisPhase.SUCCESSFUL, text + dry, self.results)
        if worst.phase is AnalysisPhase.SUCCESSFUL:
            names = ", ".join(r.metric.name for r in deciding)
            return AnalysisOutcome(
                AnalysisPhase.SUCCESSFUL, f"all metrics passed: {names}{dry}", self.results
            )
        message = f"metric {worst.metric.name!r} assessed {worst.phase.value} due to {worst.message}"
        if worst.measurements and worst.measurements[-1].message:
            message += f": {worst.measurements[-1].message}"
        return AnalysisOutcome(worst.phase, message + dry, self.results)


def _dry_run_text(results: Sequence[MetricResult]) -> str:
    dry = [r for r in results if r.dry_run]
    if not dry:
        return ""
    parts = ", ".join(f"{r.metric.name} {r.phase.value}" for r in dry)
    return f" (dry run, not deciding: {parts})"


def run_analysis(
    metrics: Sequence[Metric],
    context: AnalysisContext,
    *,
    on_measurement: Callable[[Measurement], None] | None = None,
    stop: Callable[[], bool] | None = None,
    error_retry_interval: float = DEFAULT_ERROR_RETRY_SECONDS,
    dry_run: Collection[str] = (),
    siblings: Siblings | None = None,
) -> AnalysisOutcome:
    """Run the metrics to a verdict; `on_measurement` sees (and may store) every measurement as taken.
    Metrics named in `dry_run` are measured and recorded but never decide."""
    run = AnalysisRun(
        metrics,
        context,
        stop=stop,
        error_retry_interval=error_retry_interval,
        dry_run=dry_run,
        siblings=siblings,
    )
    return run.run(on_measurement)
