"""The judge on synthetic samples: Mann-Whitney U classification and Kayenta's scoring."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from orchestrator.analysis.judge import (
    MetricVerdict,
    classify,
    clean_samples,
    score,
    shift_interval,
    verdict_phase,
)
from orchestrator.analysis.phases import AnalysisPhase
from orchestrator.config.pipeline import EffectSize, JudgeProvider


def latencies(seed: int, size: int = 60, median: float = 100.0, spread: float = 0.2) -> list[float]:
    """Log-normal request latencies around `median` ms, as real ones are."""
    rng = np.random.default_rng(seed)
    return list(median * rng.lognormal(0.0, spread, size))


@pytest.mark.parametrize("seed", range(10))
def test_samples_from_the_same_distribution_pass(seed: int) -> None:
    verdict = classify("p99", latencies(seed), latencies(seed + 1000), "increase")
    assert verdict.classification == "Pass", verdict.reason
    assert not verdict.failed


@pytest.mark.parametrize("seed", range(10))
def test_a_shifted_canary_is_high_and_fails_when_increase_is_bad(seed: int) -> None:
    verdict = classify("p99", latencies(seed, median=150.0), latencies(seed + 1000), "increase")
    assert verdict.classification == "High"
    assert verdict.failed
    assert verdict.estimate is not None and 30 < verdict.estimate < 70  # the true shift is ~50 ms
    assert verdict.p_value is not None and verdict.p_value < 0.01
    assert verdict.ratio is not None and verdict.ratio > 1.3


def test_direction_decides_which_change_is_bad() -> None:
    higher, base = latencies(1, median=150.0), latencies(2)
    assert not classify("throughput", higher, base, "decrease").failed  # higher is fine when lower is bad
    assert classify("throughput", higher, base, "either").failed
    lower = latencies(3, median=60.0)
    low = classify("throughput", lower, base, "decrease")
    assert low.classification == "Low" and low.failed
    assert not classify("errors", lower, base, "increase").failed


def test_identical_single_valued_and_empty_samples() -> None:
    same = [1.0, 2.0, 3.0]
    assert classify("m", same, list(reversed(same)), "increase").classification == "Pass"
    assert classify("m", [5.0, 5.0], [5.0, 5.0, 5.0], "increase").classification == "Pass"
    nodata = classify("m", [], same, "increase")
    assert nodata.classification == "NoData" and not nodata.failed
    assert "no canary samples" in nodata.reason
    # NaN (no requests in a window) is dropped before classifying, as Kayenta does
    assert classify("m", [float("nan")] * 5, same, "increase").classification == "NoData"


def test_outliers_beyond_three_iqr_are_removed() -> None:
    values = [10.0, 11.0, 12.0, 11.5, 10.5, 1000.0, float("inf")]
    assert clean_samples(values) == [10.0, 11.0, 12.0, 11.5, 10.5]


def test_the_shift_interval_covers_the_true_shift_and_agrees_with_the_u_test() -> None:
    canary, stable = latencies(7, median=120.0), latencies(8)
    estimate, lower, upper = shift_interval(canary, stable, 0.98)
    assert lower < estimate < upper
    assert lower < 20 < upper or abs(estimate - 20) < 10
    p_value = stats.mannwhitneyu(canary, stable, alternative="two-sided").pvalue
    # an interval that excludes 0 at 98 % goes with a two-sided p-value under 2 %
    assert (lower > 0) == (p_value < 0.02)


def verdict(name: str, failed: bool, *, critical: bool = False, nodata: bool = False) -> MetricVerdict:
    return MetricVerdict(
        name=name,
        classification="NoData" if nodata else ("High" if failed else "Pass"),
        failed=failed,
        reason="",
        canary_count=0 if nodata else 10,
        stable_count=10,
        canary_median=None,
        stable_median=None,
        critical=critical,
        critical_failure=critical and failed,
    )


def test_score_is_the_share_of_passing_metrics_like_kayenta() -> None:
    assert score([verdict("a", False), verdict("b", False)]) == 100.0
    assert score([verdict("a", False), verdict("b", True)]) == 50.0
    assert score([verdict("a", False), verdict("b", False), verdict("c", True)]) == pytest.approx(66.67, 0.01)
    # metrics without data are not scored; a critical failure scores 0
    assert score([verdict("a", False), verdict("b", False, nodata=True)]) == 100.0
    assert score([verdict("a", False), verdict("b", True, critical=True), verdict("c", False)]) == 0.0
    assert score([verdict("a", False, nodata=True)]) is None


@pytest.mark.parametrize(
    ("value", "phase"),
    [
        (100.0, AnalysisPhase.SUCCESSFUL),
        (95.0, AnalysisPhase.SUCCESSFUL),
        (80.0, AnalysisPhase.INCONCLUSIVE),  # marginal
        (75.0, AnalysisPhase.INCONCLUSIVE),
        (74.9, AnalysisPhase.FAILED),
        (0.0, AnalysisPhase.FAILED),
    ],
)
def test_scores_map_to_pass_marginal_fail(value: float, phase: AnalysisPhase) -> None:
    assert verdict_phase(value, pass_score=95.0, marginal_score=75.0) is phase


def test_a_significant_shift_under_the_allowed_effect_size_passes() -> None:
    canary, stable = latencies(4, median=110.0, spread=0.05), latencies(5, spread=0.05)
    assert classify("p99", canary, stable, "increase").classification == "High"  # 10 % is significant here
    tolerated = classify("p99", canary, stable, "increase", effect=EffectSize(allowed_increase=1.2))
    assert tolerated.classification == "Pass" and not tolerated.failed
    assert "under allowedIncrease 1.2" in tolerated.reason
    strict = classify("p99", canary, stable, "increase", effect=EffectSize(allowed_increase=1.05))
    assert strict.classification == "High" and strict.failed
    lower = classify("rps", stable, canary, "decrease", effect=EffectSize(allowed_decrease=0.8))
    assert lower.classification == "Pass" and "over allowedDecrease 0.8" in lower.reason


def test_a_critical_metric_scores_zero_only_past_its_critical_effect_size() -> None:
    canary, stable = latencies(6, median=150.0), latencies(7)
    mild = classify(
        "p99", canary, stable, "increase", critical=True, effect=EffectSize(critical_increase=2.0)
    )
    assert mild.failed and not mild.critical_failure
    assert score([mild, classify("ok", stable, stable, "increase")]) == 50.0
    severe = classify(
        "p99", canary, stable, "increase", critical=True, effect=EffectSize(critical_increase=1.2)
    )
    assert severe.critical_failure
    assert score([severe, classify("ok", stable, stable, "increase")]) == 0.0


def test_effect_size_is_configured_per_metric_or_with_the_single_query() -> None:
    single = JudgeProvider.model_validate({"query": "q{{version}}", "effectSize": {"allowedIncrease": 1.2}})
    assert single.judged_metrics[0].effect_size.allowed_increase == 1.2
    listed = JudgeProvider.model_validate(
        {"metrics": [{"name": "p99", "query": "q{{version}}", "effectSize": {"criticalIncrease": 1.5}}]}
    )
    assert listed.judged_metrics[0].effect_size == EffectSize(critical_increase=1.5)
    with pytest.raises(ValueError, match="effectSize goes on each metric"):
        JudgeProvider.model_validate(
            {"metrics": [{"name": "p99", "query": "q"}], "effectSize": {"allowedIncrease": 1.2}}
        )
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        EffectSize.model_validate({"allowedIncrease": 0.9})
