"""Argo Rollouts' analysis rules, one table row per behaviour, each naming what it encodes.

Sources: Argo Rollouts' `analysis/analysis.go` (generateMetricTasks, runMeasurements, assessRunStatus,
assessMetricStatus, assessMetricFailureInconclusiveOrError, DefaultErrorRetryInterval),
`utils/analysis/helpers.go` (IsTerminating, IsWorse, GetDryRunMetrics), `utils/analysis/factory.go`
(ValidateMetric), `utils/evaluate/evaluate.go` (EvaluateResult, default) and `docs/features/analysis.md`
(the NaN, Inf and empty-array examples). Providers are scripted implementations of the analysis interface
and time is a fake clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.analysis import AnalysisPhase, resolve_analysis
from orchestrator.analysis.conditions import assess_result
from orchestrator.config.pipeline import AnalysisStep, Metric
from orchestrator.errors import ConfigError
from orchestrator.rollout.gates import gate_verdict, step_count
from tests.unit.test_analysis_run import FakeClock, clock_offset, metric, run

S, F, I, E = (  # noqa: E741 - one letter per phase keeps the table readable
    AnalysisPhase.SUCCESSFUL,
    AnalysisPhase.FAILED,
    AnalysisPhase.INCONCLUSIVE,
    AnalysisPhase.ERROR,
)


@dataclass(frozen=True)
class RunCase:
    behaviour: str
    metrics: list[dict[str, Any]]
    scripts: dict[str, list[AnalysisPhase]]
    phase: AnalysisPhase
    taken: int | None = None
    offsets: list[float] | None = None  # seconds after the start, of every measurement (all metrics)
    message: str | None = None
    metric_phases: dict[str, AnalysisPhase] = field(default_factory=dict)
    dry_run: frozenset[str] = frozenset()
    stop_at: float | None = None


def m(name: str = "m", **fields: Any) -> dict[str, Any]:
    return {"name": name, **fields}


RUN_CASES = [
    RunCase(
        "count measurements, then Successful (assessMetricStatus: Count Reached)",
        [m(count=3, interval="30s")],
        {"m": [S]},
        S,
        offsets=[0, 30, 60],
        message="all metrics passed",
    ),
    RunCase("no interval and no count: one measurement (EffectiveCount 1)", [m()], {"m": [S]}, S, taken=1),
    RunCase(
        "count: 0 means unset; with an interval the metric runs until stopped (EffectiveCount nil)",
        [m(count=0, interval="5s")],
        {"m": [S]},
        S,
        offsets=[0, 5, 10],
        stop_at=12,
    ),
    RunCase("count: 0 and no interval: one measurement", [m(count=0)], {"m": [S]}, S, taken=1),
    RunCase(
        "failureLimit defaults to 0: the first Failed fails the metric",
        [m(count=3, interval="1s")],
        {"m": [F]},
        F,
        taken=1,
        message="failed (1) > failureLimit (0)",
    ),
    RunCase(
        "failures up to failureLimit are tolerated",
        [m(count=4, interval="1s", failureLimit=2)],
        {"m": [F, S, F, S]},
        S,
        taken=4,
    ),
    RunCase(
        "more failures than failureLimit fail at once, before count",
        [m(count=10, interval="1s", failureLimit=1)],
        {"m": [F, S, F]},
        F,
        taken=3,
    ),
    RunCase(
        "failureLimit -1 with consecutiveSuccessLimit: wait for N successes in a row",
        [m(interval="1s", failureLimit=-1, consecutiveSuccessLimit=2)],
        {"m": [F, F, F, S, S]},
        S,
        taken=5,
        metric_phases={"m": S},
    ),
    RunCase(
        "failureLimit -1: count reached without consecutiveSuccessLimit is Failed",
        [m(count=5, interval="1s", failureLimit=-1, consecutiveSuccessLimit=3)],
        {"m": [S, S, F, S, S]},
        F,
        taken=5,
        message="without consecutiveSuccessLimit (3)",
    ),
    RunCase(
        "both limits on: count reached, failureLimit not violated, successes not reached → Inconclusive",
        [m(count=5, interval="1s", failureLimit=2, consecutiveSuccessLimit=3)],
        {"m": [S, F, S, F, S]},
        I,
        taken=5,
    ),
    RunCase(
        "both limits on: consecutiveSuccessLimit reached first → Successful before count",
        [m(count=10, interval="1s", failureLimit=1, consecutiveSuccessLimit=2)],
        {"m": [S, F, S, S]},
        S,
        taken=4,
    ),
    RunCase(
        "both limits on: failureLimit violated wins over successes",
        [m(count=10, interval="1s", failureLimit=1, consecutiveSuccessLimit=3)],
        {"m": [F, S, S, F]},
        F,
        taken=4,
    ),
    RunCase(
        "an Error breaks a run of successes (ConsecutiveSuccess reset)",
        [m(count=10, interval="1s", consecutiveSuccessLimit=2, failureLimit=0)],
        {"m": [S, E, S, S]},
        S,
        taken=4,
    ),
    RunCase(
        "inconclusiveLimit defaults to 0: the first Inconclusive ends the metric",
        [m(count=3, interval="1s")],
        {"m": [I]},
        I,
        taken=1,
        message="inconclusive (1) > inconclusiveLimit (0)",
    ),
    RunCase(
        "more Inconclusive than inconclusiveLimit → Inconclusive",
        [m(count=5, interval="1s", inconclusiveLimit=1)],
        {"m": [I, S, I]},
        I,
        taken=3,
    ),
    RunCase(
        "Inconclusive up to inconclusiveLimit still completes Successful",
        [m(count=3, interval="1s", inconclusiveLimit=2)],
        {"m": [I, I, S]},
        S,
        taken=3,
    ),
    RunCase(
        "consecutiveErrorLimit defaults to 4: the fifth Error in a row is an Error",
        [m(count=2, interval="1s")],
        {"m": [E]},
        E,
        taken=5,
        message="consecutiveErrors (5) > consecutiveErrorLimit (4)",
    ),
    RunCase(
        "consecutiveErrorLimit 0: the first Error ends the metric",
        [m(count=2, interval="1s", consecutiveErrorLimit=0)],
        {"m": [E]},
        E,
        taken=1,
    ),
    RunCase(
        "errors do not count towards count", [m(count=2, interval="1s")], {"m": [E, S, E, S]}, S, taken=4
    ),
    RunCase(
        "after an Error the retry comes 10 s later, not after the 30 s interval (DefaultErrorRetryInterval)",
        [m(count=3, interval="30s", consecutiveErrorLimit=2)],
        {"m": [E]},
        E,
        offsets=[0, 10, 20],
    ),
    RunCase(
        "after an Error the retry comes 10 s later even with a 2 s interval",
        [m(count=3, interval="2s", consecutiveErrorLimit=1)],
        {"m": [E]},
        E,
        offsets=[0, 10],
    ),
    RunCase(
        "after a retried Error succeeds, the interval applies again",
        [m(count=2, interval="30s")],
        {"m": [E, S, S]},
        S,
        offsets=[0, 10, 40],
    ),
    RunCase(
        "initialDelay delays the first measurement only",
        [m(count=2, interval="10s", initialDelay="45s")],
        {"m": [S]},
        S,
        offsets=[45, 55],
    ),
    RunCase(
        "two metrics at one tick: the worst phase wins, Inconclusive listed first (assessRunStatus)",
        [m("a", count=1), m("b", count=1)],
        {"a": [I], "b": [F]},
        F,
        taken=2,
        metric_phases={"a": I, "b": F},
    ),
    RunCase(
        "two metrics finishing at one tick: Error listed first, Failed second → Failed",
        [m("a", count=1, consecutiveErrorLimit=0), m("b", count=1)],
        {"a": [E], "b": [F]},
        F,
        taken=2,
    ),
    RunCase(
        "two metrics at one tick: Inconclusive and Error → Error (Successful < Inconclusive < Error)",
        [m("a", count=1), m("b", count=1, consecutiveErrorLimit=0)],
        {"a": [I], "b": [E]},
        E,
        taken=2,
    ),
    RunCase(
        "three metrics at one tick: Successful, Inconclusive, Error → Error",
        [m("a", count=1), m("b", count=1), m("c", count=1, consecutiveErrorLimit=0)],
        {"a": [S], "b": [I], "c": [E]},
        E,
        taken=3,
    ),
    RunCase(
        "a Failed metric terminates the run; metrics still running count as Successful (IsTerminating)",
        [m("healthy", interval="1s"), m("broken", count=5, interval="1s")],
        {"healthy": [S], "broken": [S, F]},
        F,
        taken=4,
        metric_phases={"healthy": S, "broken": F},
    ),
    RunCase(
        "an Inconclusive metric terminates the run too (IsTerminating)",
        [m("healthy", count=5, interval="1s"), m("unsure", count=5, interval="1s")],
        {"healthy": [S], "unsure": [S, I]},
        I,
        taken=4,
    ),
    RunCase(
        "an Error metric terminates the run too",
        [m("healthy", count=5, interval="1s"), m("down", count=5, interval="1s", consecutiveErrorLimit=0)],
        {"healthy": [S], "down": [E]},
        E,
        taken=2,
    ),
    RunCase(
        "a metric that completes Successful does not end the others",
        [m("once", count=1), m("thrice", count=3, interval="5s")],
        {"once": [S], "thrice": [S]},
        S,
        offsets=[0, 0, 5, 10],
    ),
    RunCase(
        "a run stopped from outside: running metrics are Successful (Terminate)",
        [m(interval="5s")],
        {"m": [S]},
        S,
        offsets=[0, 5, 10, 15, 20],
        stop_at=22,
        message="all metrics passed",
    ),
    RunCase(
        "a run stopped before any measurement is Successful (SuccessfulAssessmentRunTerminatedResult)",
        [m(count=1, initialDelay="60s")],
        {"m": [S]},
        S,
        taken=0,
        stop_at=0,
    ),
    RunCase(
        "stopped with consecutiveSuccessLimit not reached: still Successful (it does not affect termination)",
        [m(interval="5s", consecutiveSuccessLimit=3)],
        {"m": [S]},
        S,
        taken=2,
        stop_at=7,
    ),
    RunCase(
        "dryRun: a failing dry-run metric never fails the run",
        [m("shadow", count=1), m("real", count=1)],
        {"shadow": [F], "real": [S]},
        S,
        taken=2,
        dry_run=frozenset({"shadow"}),
        message="dry run, not deciding: shadow Failed",
        metric_phases={"shadow": F, "real": S},
    ),
    RunCase(
        "dryRun: a failing dry-run metric does not terminate the run",
        [m("shadow", count=3, interval="1s"), m("real", count=3, interval="1s")],
        {"shadow": [F], "real": [S]},
        S,
        taken=4,
        dry_run=frozenset({"shadow"}),
    ),
    RunCase(
        "dryRun: an Inconclusive or Error dry-run metric does not decide either",
        [m("a", count=1), m("b", count=1, consecutiveErrorLimit=0), m("real", count=1)],
        {"a": [I], "b": [E], "real": [S]},
        S,
        dry_run=frozenset({"a", "b"}),
    ),
    RunCase(
        "dryRun: every metric in dry run → Successful",
        [m("a", count=1)],
        {"a": [F]},
        S,
        dry_run=frozenset({"a"}),
        message="no metrics decide this analysis",
    ),
    RunCase(
        "dryRun: a real failure still fails the run",
        [m("shadow", count=1), m("real", count=1)],
        {"shadow": [S], "real": [F]},
        F,
        dry_run=frozenset({"shadow"}),
    ),
]


@pytest.mark.parametrize("case", RUN_CASES, ids=[c.behaviour for c in RUN_CASES])
def test_argo_analysis_run_rules(case: RunCase) -> None:
    clock = FakeClock()
    start = clock.now()
    options: dict[str, Any] = {"dry_run": case.dry_run}
    if case.stop_at is not None:
        stop_at = case.stop_at
        options["stop"] = lambda: clock.elapsed(start) >= stop_at
    metrics = [metric(**spec) for spec in case.metrics]
    analysis, taken, _ = run(metrics, case.scripts, clock, **options)
    assert analysis.outcome is not None
    assert analysis.outcome.phase is case.phase, analysis.outcome.message
    if case.taken is not None:
        assert len(taken) == case.taken
    if case.offsets is not None:
        assert [clock_offset(t, start) for t in taken] == case.offsets
    if case.message is not None:
        assert case.message in analysis.outcome.message
    for name, phase in case.metric_phases.items():
        assert {r.metric.name: r.phase for r in analysis.results}[name] is phase


# --- one measurement: EvaluateResult and the documented NaN / Inf / empty-array examples -------------


@pytest.mark.parametrize(
    ("behaviour", "success", "failure", "result", "phase"),
    [
        ("no conditions: any value is Successful", None, None, 1.0, S),
        ("a success condition alone: false is Failed", "result >= 0.95", None, 0.5, F),
        ("a failure condition alone: false is Successful", None, "result < 0.5", 0.9, S),
        ("both conditions, neither met: Inconclusive", "result[0] >= 0.90", "result[0] < 0.50", [0.7], I),
        ("both conditions met: failure wins", "result > 0", "result > 0.5", 0.9, F),
        ("docs: NaN with `result >= 0.95` alone is Failed", "result >= 0.95", None, math.nan, F),
        (
            "docs: NaN with success and failure conditions is Inconclusive",
            "result >= 0.95",
            "result < 0.95",
            math.nan,
            I,
        ),
        (
            "docs: NaN passes only when said so: isNaN(result) || result >= 0.95",
            "isNaN(result) || result >= 0.95",
            None,
            math.nan,
            S,
        ),
        ("docs: +Inf with `result >= 0.95` is Successful", "result >= 0.95", None, math.inf, S),
        ("docs: +Inf with failureCondition isInf(result) is Failed", None, "isInf(result)", math.inf, F),
        (
            "docs: [] with `len(result) == 0 || result[0] >= 0.95` is Successful",
            "len(result) == 0 || result[0] >= 0.95",
            None,
            [],
            S,
        ),
        (
            "docs: [] with `len(result) > 0 && result[0] >= 0.95` is Failed",
            "len(result) > 0 && result[0] >= 0.95",
            None,
            [],
            F,
        ),
        (
            "[] with `result[0] >= 0.95`: the condition cannot be evaluated → Error",
            "result[0] >= 0.95",
            None,
            [],
            E,
        ),
        (
            "default replaces nil only: default(result[0], 0) on [] is still an Error",
            "default(result[0], 0) < 500",
            None,
            [],
            E,
        ),
        (
            "default replaces nil only: NaN stays NaN, default(result, 0) < 10 is Failed",
            "default(result, 0) < 10",
            None,
            math.nan,
            F,
        ),
        (
            "docs: default(result, 0) < 0.05 with a nil result is Successful",
            "default(result, 0) < 0.05",
            None,
            None,
            S,
        ),
        ("docs: all(result, # < 1000)", "all(result, # < 1000)", None, [10.0, 999.0], S),
        (
            "all(result, # < 1000) over no data is an Error, never a vacuous pass",
            "all(result, # < 1000)",
            None,
            [],
            E,
        ),
        (
            "docs: max(result) < 0.05 fails if any endpoint exceeds it",
            "max(result) < 0.05",
            None,
            [0.01, 0.06],
            F,
        ),
        ("mean(result) over no data is an Error", "mean(result) < 5", None, [], E),
        (
            "docs: a webhook's JSON: result.ok && result.successPercent >= 0.90",
            "result.ok && result.successPercent >= 0.90",
            None,
            {"ok": True, "successPercent": 0.95},
            S,
        ),
        ("docs: a webhook's text: result == 'true'", "result == 'true'", None, "true", S),
        ("a condition that does not give true or false is an Error", "result[0]", None, [1.0], E),
    ],
)
def test_argo_evaluate_result(
    behaviour: str, success: str | None, failure: str | None, result: Any, phase: AnalysisPhase
) -> None:
    assert assess_result(result, success, failure)[0] is phase, behaviour


# --- refusing metrics that cannot decide (ValidateMetric) ------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "fields", "refusal"),
    [
        (
            "count below failureLimit could never fail",
            {"count": 2, "failureLimit": 3, "interval": "1s"},
            "count (2) must be at least failureLimit + consecutiveSuccessLimit (3 + 0)",
        ),
        (
            "count below failureLimit + consecutiveSuccessLimit",
            {"count": 4, "failureLimit": 2, "consecutiveSuccessLimit": 3, "interval": "1s"},
            "(2 + 3)",
        ),
        (
            "failureLimit -1: count below consecutiveSuccessLimit",
            {"count": 2, "failureLimit": -1, "consecutiveSuccessLimit": 3, "interval": "1s"},
            "count (2) must be at least consecutiveSuccessLimit (3)",
        ),
        (
            "failureLimit and consecutiveSuccessLimit both disabled",
            {"failureLimit": -1},
            "failureLimit and consecutiveSuccessLimit cannot both be disabled",
        ),
        ("count below inconclusiveLimit", {"count": 1, "inconclusiveLimit": 2}, "inconclusiveLimit (2)"),
        ("failureLimit below -1", {"failureLimit": -2}, "greater than or equal to -1"),
        ("negative consecutiveSuccessLimit", {"consecutiveSuccessLimit": -1}, "greater than or equal to 0"),
    ],
)
def test_argo_validate_metric_refuses(behaviour: str, fields: dict[str, Any], refusal: str) -> None:
    with pytest.raises(
        ValidationError, match=refusal.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")
    ):
        metric(**fields)


@pytest.mark.parametrize(
    ("behaviour", "fields"),
    [
        ("count: 0 means unset, so any failureLimit goes", {"count": 0, "failureLimit": 3}),
        (
            "count equal to failureLimit + consecutiveSuccessLimit",
            {"count": 5, "failureLimit": 2, "consecutiveSuccessLimit": 3, "interval": "1s"},
        ),
        ("failureLimit -1 with consecutiveSuccessLimit", {"failureLimit": -1, "consecutiveSuccessLimit": 1}),
    ],
)
def test_argo_validate_metric_accepts(behaviour: str, fields: dict[str, Any]) -> None:
    assert isinstance(metric(**fields), Metric)


def test_dry_run_rules_are_regular_expressions_and_must_match_a_metric() -> None:
    spec = {"provider": {"webhook": {"url": "http://127.0.0.1:1/"}}}
    step = AnalysisStep.model_validate(
        {
            "metrics": [
                {"name": "errors-5xx", **spec},
                {"name": "errors-4xx", **spec},
                {"name": "latency", **spec},
            ],
            "dryRun": [{"metricName": "errors-.*"}],
        }
    )
    assert resolve_analysis(step, {}).dry_run == {"errors-5xx", "errors-4xx"}
    everything = step.model_copy(
        update={"dry_run": [step.dry_run[0].model_copy(update={"metric_name": ".*"})]}
    )
    assert resolve_analysis(everything, {}).dry_run == {"errors-5xx", "errors-4xx", "latency"}
    unmatched = step.model_copy(
        update={"dry_run": [step.dry_run[0].model_copy(update={"metric_name": "^cpu"})]}
    )
    with pytest.raises(ConfigError, match="matches no metric"):
        resolve_analysis(unmatched, {})


# --- what the rollout does with a run's phase -------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "phases", "passed", "inconclusive"),
    [
        ("every cluster Successful: the step passes", [S, S], True, False),
        ("a Failed cluster: roll back", [S, F], False, False),
        ("an Error cluster: roll back (fail safe)", [E, S], False, False),
        ("Inconclusive and no failure: pause for a person (Argo pauses the rollout)", [S, I], False, True),
        ("Inconclusive and Failed: the failure decides, roll back", [I, F], False, False),
    ],
)
def test_the_gate_acts_on_the_run_phase_as_argo_acts_on_an_analysis_run(
    behaviour: str, phases: list[AnalysisPhase], passed: bool, inconclusive: bool
) -> None:
    verdict = gate_verdict([(f"c{i}", p, p.value) for i, p in enumerate(phases)], "test")
    assert (verdict.passed, verdict.inconclusive) == (passed, inconclusive), behaviour


def test_a_step_gives_a_metric_without_count_enough_measurements_to_fail() -> None:
    assert step_count(metric()) == 2
    assert step_count(metric(failureLimit=3)) == 4  # 4 failures exceed failureLimit 3
    assert step_count(metric(failureLimit=1, consecutiveSuccessLimit=3)) == 5
    assert step_count(metric(inconclusiveLimit=4)) == 5
