"""The analysis run applies Argo Rollouts' rules: interval, count, initialDelay and the three limits.

Providers here are scripted implementations of the analysis interface (not fakes of any client library),
and time is a fake clock: these tests never sleep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator.analysis import (
    AnalysisContext,
    AnalysisPhase,
    AnalysisRun,
    Measurement,
    effective_count,
    provider_name,
    run_analysis,
)
from orchestrator.analysis.base import start_measurement
from orchestrator.config.pipeline import Metric

S, F, I, E = (  # noqa: E741 - one letter per phase keeps the scripts readable
    AnalysisPhase.SUCCESSFUL,
    AnalysisPhase.FAILED,
    AnalysisPhase.INCONCLUSIVE,
    AnalysisPhase.ERROR,
)


class FakeClock:
    """Time that moves only when the code under test sleeps (or a test advances it)."""

    def __init__(
        self, start: datetime | None = None, on_sleep: Callable[[float], None] | None = None
    ) -> None:
        self.current = start or datetime(2024, 1, 1, tzinfo=UTC)
        self.slept: list[float] = []
        self.on_sleep = on_sleep

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep(seconds)
        self.current += timedelta(seconds=seconds)

    def elapsed(self, since: datetime) -> float:
        return (self.current - since).total_seconds()


class Scripted:
    """A provider whose measurements follow a script of phases; the last phase repeats."""

    source = "webhook"

    def __init__(self, script: list[AnalysisPhase], cost: float = 0.0) -> None:
        self.script = list(script)
        self.calls = 0
        self.cost = cost

    def measure(self, metric: Metric, context: AnalysisContext) -> Measurement:
        taking = start_measurement(metric, context, source=self.source, query="")
        phase = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        taking.query = f"call {self.calls}"
        if self.cost:
            context.clock.sleep(self.cost)
        return taking.done(phase, f"scripted {phase.value}", value=float(self.calls))


def metric(name: str = "m", **fields: Any) -> Metric:
    return Metric.model_validate(
        {"name": name, "provider": {"webhook": {"url": "http://127.0.0.1:1/"}}, **fields}
    )


def context(clock: FakeClock) -> AnalysisContext:
    return AnalysisContext(
        service="api", namespace="shop", canary_version="v2", stable_version="v1", clock=clock
    )


def run(
    metrics: list[Metric],
    scripts: dict[str, list[AnalysisPhase]],
    clock: FakeClock | None = None,
    **options: Any,
) -> tuple[AnalysisRun, list[Measurement], FakeClock]:
    clock = clock or FakeClock()
    providers = {name: Scripted(script) for name, script in scripts.items()}
    by_metric: Iterator[Scripted] = iter(providers[m.name] for m in metrics)
    analysis = AnalysisRun(metrics, context(clock), providers={"webhook": lambda: next(by_metric)}, **options)
    taken = list(analysis.measurements())
    return analysis, taken, clock


# --- count and interval ---------------------------------------------------------------------------------


def test_count_measurements_at_each_interval_then_successful() -> None:
    clock = FakeClock()
    start = clock.now()
    analysis, taken, _ = run([metric(count=3, interval="30s")], {"m": [S]}, clock)
    assert analysis.outcome is not None
    assert analysis.outcome.phase is S
    assert [clock_offset(m, start) for m in taken] == [0, 30, 60]
    assert analysis.results[0].message == "count (3) reached"


def clock_offset(measurement: Measurement, start: datetime) -> float:
    return (measurement.started_at - start).total_seconds()


def test_initial_delay_comes_before_the_first_measurement() -> None:
    clock = FakeClock()
    start = clock.now()
    _, taken, _ = run([metric(count=2, interval="10s", initialDelay="45s")], {"m": [S]}, clock)
    assert [clock_offset(m, start) for m in taken] == [45, 55]


def test_interval_counts_from_the_end_of_the_previous_measurement() -> None:
    clock = FakeClock()
    start = clock.now()
    slow = Scripted([S], cost=4.0)
    analysis = AnalysisRun(
        [metric(count=3, interval="10s")], context(clock), providers={"webhook": lambda: slow}
    )
    taken = list(analysis.measurements())
    assert [clock_offset(m, start) for m in taken] == [0, 14, 28]


def test_without_interval_or_count_one_measurement_is_taken() -> None:
    without = metric()
    assert effective_count(without) == 1
    assert effective_count(metric(interval="5s")) is None  # runs until stopped, like background analysis
    assert effective_count(metric(interval="5s", count=4)) == 4
    analysis, taken, _ = run([without], {"m": [S]})
    assert len(taken) == 1
    assert analysis.outcome is not None and analysis.outcome.passed


# --- failureLimit, inconclusiveLimit, consecutiveErrorLimit -----------------------------------------


def test_failures_up_to_the_limit_are_tolerated() -> None:
    analysis, taken, _ = run([metric(count=4, interval="1s", failureLimit=2)], {"m": [F, S, F, S]})
    assert analysis.outcome is not None
    assert analysis.outcome.phase is S
    assert len(taken) == 4


def test_failures_beyond_the_limit_fail_at_once() -> None:
    analysis, taken, _ = run([metric(count=10, interval="1s", failureLimit=1)], {"m": [F, S, F, S]})
    assert analysis.outcome is not None
    assert analysis.outcome.phase is F
    assert len(taken) == 3  # stops at the second failure, not at count
    assert "failed (2) > failureLimit (1)" in analysis.outcome.message


def test_default_failure_limit_is_zero() -> None:
    analysis, taken, _ = run([metric(count=3, interval="1s")], {"m": [F]})
    assert analysis.outcome is not None and analysis.outcome.phase is F
    assert len(taken) == 1


def test_inconclusive_beyond_the_limit_makes_the_run_inconclusive() -> None:
    analysis, taken, _ = run([metric(count=5, interval="1s", inconclusiveLimit=1)], {"m": [I, S, I]})
    assert analysis.outcome is not None
    assert analysis.outcome.phase is I
    assert len(taken) == 3


def test_errors_in_a_row_beyond_the_limit_make_the_run_an_error() -> None:
    clock = FakeClock()
    start = clock.now()
    analysis, taken, _ = run([metric(count=3, interval="30s", consecutiveErrorLimit=2)], {"m": [E]}, clock)
    assert analysis.outcome is not None
    assert analysis.outcome.phase is E
    assert [m.phase for m in taken] == [E, E, E]
    assert "consecutiveErrors (3) > consecutiveErrorLimit (2)" in analysis.outcome.message
    # errors are retried after 10 s (Argo's DefaultErrorRetryInterval), not after the 30 s interval
    assert [clock_offset(m, start) for m in taken] == [0, 10, 20]


def test_after_an_error_the_retry_waits_ten_seconds_even_with_a_shorter_interval() -> None:
    # Argo's DefaultErrorRetryInterval: a 2 s interval would spend consecutiveErrorLimit in seconds
    clock = FakeClock()
    start = clock.now()
    _, taken, _ = run([metric(count=3, interval="2s", consecutiveErrorLimit=1)], {"m": [E]}, clock)
    assert [clock_offset(m, start) for m in taken] == [0, 10]


def test_a_success_resets_the_error_streak_and_errors_do_not_count_towards_count() -> None:
    analysis, taken, _ = run(
        [metric(count=3, interval="1s", consecutiveErrorLimit=2)], {"m": [E, E, S, E, E, S, E, E, S]}
    )
    assert analysis.outcome is not None
    assert analysis.outcome.phase is S
    assert len(taken) == 9  # three successes needed; six errors never more than two in a row
    result = analysis.results[0]
    assert (result.count, result.errors, result.consecutive_errors) == (3, 6, 0)


def test_default_consecutive_error_limit_is_four() -> None:
    analysis, taken, _ = run([metric(count=2, interval="1s")], {"m": [E]})
    assert analysis.outcome is not None and analysis.outcome.phase is E
    assert len(taken) == 5


# --- several metrics --------------------------------------------------------------------------------------


def test_one_failing_metric_ends_the_run_and_the_worst_phase_wins() -> None:
    metrics = [metric("healthy", count=5, interval="1s"), metric("broken", count=5, interval="1s")]
    analysis, taken, _ = run(metrics, {"healthy": [S], "broken": [S, F]})
    assert analysis.outcome is not None
    assert analysis.outcome.phase is F
    assert "'broken' assessed Failed" in analysis.outcome.message
    phases = {r.metric.name: r.phase for r in analysis.results}
    assert phases == {"healthy": S, "broken": F}
    assert len(taken) == 4


def test_error_is_worse_than_inconclusive_and_failed_worse_than_error() -> None:
    metrics = [metric("a", count=1), metric("b", count=1), metric("c", count=1)]
    assert AnalysisPhase.FAILED.is_worse_than(AnalysisPhase.ERROR)
    assert AnalysisPhase.ERROR.is_worse_than(AnalysisPhase.INCONCLUSIVE)
    assert AnalysisPhase.INCONCLUSIVE.is_worse_than(AnalysisPhase.SUCCESSFUL)
    analysis, _, _ = run(metrics, {"a": [S], "b": [S], "c": [S]})
    assert analysis.outcome is not None and analysis.outcome.phase is S


def test_metrics_keep_their_own_schedules() -> None:
    clock = FakeClock()
    start = clock.now()
    metrics = [metric("fast", count=3, interval="5s"), metric("slow", count=2, interval="12s")]
    analysis, taken, _ = run(metrics, {"fast": [S], "slow": [S]}, clock)
    assert analysis.outcome is not None and analysis.outcome.passed
    assert [(m.metric, clock_offset(m, start)) for m in taken] == [
        ("fast", 0),
        ("slow", 0),
        ("fast", 5),
        ("fast", 10),
        ("slow", 12),
    ]


# --- stopping, crashes, callbacks ---------------------------------------------------------------------


def test_an_indefinite_metric_runs_until_stopped_and_then_counts_as_successful() -> None:
    clock = FakeClock()
    start = clock.now()
    analysis, taken, _ = run(
        [metric(interval="5s")], {"m": [S]}, clock, stop=lambda: clock.elapsed(start) >= 22
    )
    assert analysis.outcome is not None and analysis.outcome.phase is S
    assert [clock_offset(m, start) for m in taken] == [0, 5, 10, 15, 20]
    assert analysis.results[0].message == "run stopped"


def test_a_crashing_provider_gives_an_error_measurement_not_a_crash() -> None:
    class Broken:
        source = "webhook"

        def measure(self, metric: Metric, context: AnalysisContext) -> Measurement:
            raise RuntimeError("bug")

    clock = FakeClock()
    analysis = AnalysisRun(
        [metric(count=1, consecutiveErrorLimit=0)], context(clock), providers={"webhook": Broken}
    )
    taken = list(analysis.measurements())
    assert [m.phase for m in taken] == [E]
    assert "RuntimeError: bug" in taken[0].message
    assert analysis.outcome is not None and analysis.outcome.phase is E


def test_run_analysis_hands_every_measurement_over_as_it_is_taken() -> None:
    clock = FakeClock()
    seen: list[tuple[str, str]] = []
    # a webhook to a closed port: real Error measurements from the real provider
    outcome = run_analysis(
        [metric(count=1, consecutiveErrorLimit=1)],
        context(clock),
        on_measurement=lambda m: seen.append((m.phase.value, m.source)),
    )
    assert outcome.phase is E
    assert seen == [("Error", "webhook"), ("Error", "webhook")]
    assert outcome.sources == {"m": "webhook"}
    stored = outcome.measurements[0].to_dict()
    assert set(stored) == {
        "metric",
        "phase",
        "value",
        "query",
        "message",
        "startedAt",
        "finishedAt",
        "source",
        "details",
    }
    assert stored["query"] == "POST http://127.0.0.1:1/"


def test_provider_is_chosen_by_the_metric_kind() -> None:
    clock = FakeClock()
    assert provider_name(metric(), context(clock)) == "webhook"


@pytest.mark.parametrize("count", [1, 3])
def test_measurements_carry_time_phase_value_and_query(count: int) -> None:
    clock = FakeClock()
    start = clock.now()
    _, taken, _ = run([metric(count=count, interval="7s")], {"m": [S]}, clock)
    for index, measurement in enumerate(taken):
        assert measurement.phase is S
        assert measurement.value == float(index + 1)
        assert measurement.query == f"call {index + 1}"
        assert measurement.started_at == start + timedelta(seconds=7 * index)
        assert measurement.finished_at >= measurement.started_at
