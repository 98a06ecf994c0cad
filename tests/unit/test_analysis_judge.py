"""The judge against Kayenta: its own test suites' figures first, then the cases where we used to differ.

`data/kayenta_mannwhitney_suite.json` and `data/kayenta_classifier_suite.json` hold the samples of
Kayenta's MannWhitneySuite and ClassifierSuite (Apache-2.0); the expected figures below are the ones those
suites assert (R's wilcox.test values for the Mann-Whitney interval).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from orchestrator.analysis.judge import (
    MetricVerdict,
    classify,
    compare_rates,
    judge,
    remove_outliers,
    score,
    verdict_phase,
)
from orchestrator.analysis.mannwhitney import (
    attainable,
    samples_needed,
    shift_interval,
    wilcoxon_diff,
    z_quantile,
)
from orchestrator.analysis.phases import AnalysisPhase
from orchestrator.config.pipeline import EffectSize, JudgeProvider

DATA = Path(__file__).parent / "data"
E = 1e-6  # Kayenta's suites compare with this tolerance


def suite(name: str) -> Any:
    return json.loads((DATA / name).read_text())["cases"]


MANN_WHITNEY: dict[str, dict[str, list[float]]] = suite("kayenta_mannwhitney_suite.json")
CLASSIFIER: list[dict[str, Any]] = suite("kayenta_classifier_suite.json")


# --- Kayenta's MannWhitneySuite ------------------------------------------------------------------------


def test_wilcoxon_diff_function() -> None:
    case = MANN_WHITNEY["Wilcoxon Diff Function"]
    x, y = np.array(case["x"]), np.array(case["y"])
    assert wilcoxon_diff(0, 0, x, y) == pytest.approx(-1.229416, abs=E)
    assert wilcoxon_diff(5, 0, x, y) == pytest.approx(-35.80606, abs=E)


def test_z_quantile() -> None:
    assert -z_quantile(0.98) == pytest.approx(-2.326348, abs=E)


@pytest.mark.parametrize(
    ("case", "experiment", "control", "confidence", "lower", "upper", "estimate", "estimate_tolerance"),
    [
        ("Mann-Whitney Confidence Interval & Estimate", "experimentData", "controlData", 0.95,
         6.0, 39.0, 22.5, E),
        ("Mann-Whitney Confidence Interval & Estimate: Problem Case", "experiment", "control", 0.98,
         -1.4808028936386108e-5, 1.808255910873413e-5, 1.808255910873413e-5, E),
        ("Mann-Whitney Confidence Interval & Estimate: Tie out with R Version", "experiment", "control", 0.95,
         -0.500002521696696, -3.486287505871302e-5, -0.4999393907180323, 1e-4),
        ("Mann-Whitney Confidence Interval & Estimate: Tie out with R Version (Large)", "experiment",
         "control", 0.98, -0.4999173250549087, -6.912685789769486e-6, -3.45044082729315e-5, 1e-4),
    ],
)  # fmt: skip
def test_mann_whitney_interval_and_estimate(
    case: str,
    experiment: str,
    control: str,
    confidence: float,
    lower: float,
    upper: float,
    estimate: float,
    estimate_tolerance: float,
) -> None:
    data = MANN_WHITNEY[case]
    result = shift_interval(data[experiment], data[control], confidence)
    assert result.lower == pytest.approx(lower, abs=E)
    assert result.upper == pytest.approx(upper, abs=E)
    assert result.estimate == pytest.approx(estimate, abs=estimate_tolerance)


def test_mann_whitney_intermediate_values() -> None:
    data = MANN_WHITNEY["Mann-Whitney Intermediate Values / Variables"]
    x, y = np.array(data["x"]), np.array(data["y"])
    mu_min, mu_max = x.min() - y.max(), x.max() - y.min()
    assert mu_min == pytest.approx(-3.124999999999986, abs=E)
    assert mu_max == pytest.approx(5.555555555555557, abs=E)
    z = z_quantile(0.95)
    assert z == pytest.approx(1.9599639845400536, abs=E)
    assert wilcoxon_diff(mu_min, z, x, y) == pytest.approx(17.090968923762254, abs=E)
    assert wilcoxon_diff(mu_max, z, x, y) == pytest.approx(-20.997687930433106, abs=E)
    assert wilcoxon_diff(mu_min, -z, x, y) == pytest.approx(21.01089689284236, abs=E)
    assert wilcoxon_diff(mu_max, -z, x, y) == pytest.approx(-17.077759961353, abs=E)
    result = shift_interval(x, y, 0.95)
    # R's (and Kayenta's) figures, inverted interval included: the root finder's 1e-4 tolerance at work
    assert result.lower == pytest.approx(3.521755377702165e-5, abs=E)
    assert result.upper == pytest.approx(2.02456461662334e-5, abs=E)
    assert result.estimate == pytest.approx(2.6279243045155653e-5, abs=E)


# --- Kayenta's ClassifierSuite --------------------------------------------------------------------------

CLASSIFIER_CASES = [
    case
    for case in CLASSIFIER
    # nanStrategy "replace" turns missing data into a Pass; the judge has no such setting (fail safe)
    if not (case["nan_strategy"] == "replace" and not case["experiment"])
]


@pytest.mark.parametrize("case", CLASSIFIER_CASES, ids=[c["name"] for c in CLASSIFIER_CASES])
def test_kayenta_classifier_suite(case: dict[str, Any]) -> None:
    decrease, increase = case["effect"]
    critical_decrease, critical_increase = case["critical_thresholds"]
    # model_construct: Kayenta's suite uses thresholds (criticalDecrease 1.2) the file format refuses
    effect = EffectSize.model_construct(
        allowed_decrease=decrease,
        allowed_increase=increase,
        critical_decrease=critical_decrease,
        critical_increase=critical_increase,
    )
    verdict = classify(
        case["name"],
        case["experiment"],
        case["control"],
        case["direction"],
        tolerance=case["tolerance"],
        confidence=case["confidence"],
        critical=case["critical"],
        effect=effect,
    )
    assert verdict.classification == case["expected"], verdict.reason
    if case["expected_critical"] is not None:
        assert verdict.critical is case["expected_critical"]


def test_kayenta_zero_mean_ratio_is_not_computed() -> None:
    # "Zero Mean: High/Low Metric with Effect Size": the deviation is NaN, and the effect size gate is skipped
    high = classify("m", [54.9, 54.5, 55.1, 55.6, 57.4], [0.0] * 5, "either", tolerance=0.1, confidence=0.95,
                    effect=EffectSize(allowed_decrease=0.8, allowed_increase=1.2))  # fmt: skip
    assert (high.classification, high.ratio) == ("High", None)
    low = classify("m", [0.0] * 5, [54.9, 54.5, 55.1, 55.6, 57.4], "either", tolerance=0.1, confidence=0.95,
                   effect=EffectSize(allowed_decrease=0.8, allowed_increase=1.2))  # fmt: skip
    assert (low.classification, low.ratio) == ("Low", None)


# --- Kayenta's DetectorSuite (IQR) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kept"),
    [
        ([1.0, 1.0, 1.0, 1.0, 20.0, 1.0, 1.0, 1.0], [1.0] * 7),
        ([1.0, 1.0, 1.0, 5.0, -1.0, -1.0, -1.0, -5.0], [1.0, 1.0, 1.0, -1.0, -1.0, -1.0]),
        ([], []),
    ],
)
def test_kayenta_iqr_detector(data: list[float], kept: list[float]) -> None:
    assert remove_outliers(data, 1.5, widen=False) == kept


def test_kayenta_iqr_detector_nist() -> None:
    nist = [30.0, 171, 184, 201, 212, 250, 265, 270, 272, 289, 305, 306, 322, 322, 336, 346, 351, 370, 390,
            404, 409, 411, 436, 437, 439, 441, 444, 448, 451, 453, 470, 480, 482, 487, 494, 495, 499, 503,
            514, 521, 522, 527, 548, 550, 559, 560, 570, 572, 574, 578, 585, 592, 592, 607, 616, 618, 621,
            629, 637, 638, 640, 656, 668, 707, 709, 719, 737, 739, 752, 758, 766, 792, 792, 794, 802, 818,
            830, 832, 843, 858, 860, 869, 918, 925, 953, 991, 1000, 1005, 1068, 1441]  # fmt: skip
    assert remove_outliers(nist, 1.5, widen=False) == nist[:-1]


# --- Kayenta's ScorerSuite (one group: the judge scores one) ------------------------------------------


def verdict(classification: str, *, critical: bool = False) -> MetricVerdict:
    return MetricVerdict(
        name=classification.lower(),
        classification=classification,  # type: ignore[arg-type]
        reason="",
        canary_count=10,
        stable_count=10,
        critical=critical,
    )


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["Pass"], 100.0),  # Single Metric Pass
        (["High"], 0.0),  # Single Metric Fail
        (["Nodata"], 0.0),  # Single group Nodata
        (["Pass", "High"], 50.0),  # One Group, Two Metrics
        (["Pass", "High", "Low"], 33.33),  # One Group, Three Metrics (rounded to 2 decimals)
        (["Pass", "Pass", "Nodata"], 100.0),  # under half without data: not scored
        (["High", "Low", "Pass"], 33.33),
    ],
)
def test_kayenta_scorer_suite(labels: list[str], expected: float) -> None:
    assert score([verdict(label) for label in labels])[0] == expected


def test_kayenta_scorer_critical_metrics() -> None:
    # "one good (normal), one fail (critical)" → 0; "one low (normal), one good (critical)" → 50;
    # "one good (normal), one nodata (critical)" → 0
    assert score([verdict("Pass"), verdict("High", critical=True)])[0] == 0.0
    assert score([verdict("Low"), verdict("Pass", critical=True)])[0] == 50.0
    assert score([verdict("Pass"), verdict("Nodata", critical=True)])[0] == 0.0


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
def test_scores_map_to_pass_marginal_fail_like_the_threshold_classifier(
    value: float, phase: AnalysisPhase
) -> None:
    assert verdict_phase(value, pass_score=95.0, marginal_score=75.0) is phase


# --- the cases ----------------------------------------------------------------------------------


def latencies(seed: int, size: int = 60, median: float = 100.0, spread: float = 0.2) -> list[float]:
    """Log-normal request latencies around `median` ms, as real ones are."""
    rng = np.random.default_rng(seed)
    return list(median * rng.lognormal(0.0, spread, size))


CONFIG = JudgeProvider.model_validate({"query": "q{{version}}"})


def test_half_the_metrics_without_data_fails_as_in_kayenta() -> None:
    same = latencies(1)
    verdicts = [classify("a", same, latencies(2), "increase"), classify("b", [], same, "increase")]
    assert [v.classification for v in verdicts] == ["Pass", "Nodata"]
    phase, value, message = judge(verdicts, CONFIG)
    assert (phase, value) == (AnalysisPhase.FAILED, 0.0)
    assert "50% or more of the metrics returned no data" in message


def test_a_critical_metric_without_data_scores_zero() -> None:
    same = latencies(1)
    verdicts = [
        classify("a", same, latencies(2), "increase"),
        classify("b", same, latencies(3), "increase"),
        classify("c", [float("nan")] * 10, same, "increase", critical=True),  # NaN only: no data
    ]
    assert verdicts[2].classification == "Nodata" and verdicts[2].critical
    assert judge(verdicts, CONFIG)[:2] == (AnalysisPhase.FAILED, 0.0)


def test_must_have_data_counts_a_missing_metric_as_a_failure() -> None:
    same = latencies(1)
    missing = classify("b", same, [], "increase", must_have_data=True)
    assert missing.classification == "NodataFailMetric" and missing.failed
    others = [classify(n, same, latencies(i), "increase") for i, n in enumerate("acd", start=2)]
    assert score([*others, missing])[0] == 75.0


def test_latency_spikes_are_kept_as_kayenta_keeps_outliers() -> None:
    stable, canary = latencies(10, 5000), latencies(11, 5000)
    canary[: 5000 * 4 // 100] = [1000.0] * (5000 * 4 // 100)  # 4 % of requests 10x slower
    effect = EffectSize(allowed_increase=1.2)
    kept = classify("latency", canary, stable, "increase", effect=effect)
    assert kept.classification == "High", kept.reason
    assert kept.ratio is not None and kept.ratio > 1.3
    # Kayenta's `outliers: remove` fences reach out to the 99th percentile: 3 % of spikes stay, still High
    assert (
        classify("latency", canary, stable, "increase", effect=effect, outliers="remove").classification
        == "High"
    )
    # what trimming at Q3 + 3 IQR (our old behaviour) hid
    trimmed = remove_outliers(canary, 3.0, widen=False)
    assert classify("latency", trimmed, stable, "increase", effect=effect).classification == "Pass"


def test_every_sample_counts_a_small_shift_over_many_samples_is_found() -> None:
    rng = np.random.default_rng(4)
    stable = list(rng.lognormal(0, 0.1, 20_000))
    canary = list(rng.lognormal(0, 0.1, 20_000) * 1.006)  # +0.6 %
    assert classify("latency", canary, stable, "increase").classification == "High"
    # the last 2,000 of each (what MAX_SAMPLES kept) cannot see it
    assert classify("latency", canary[-2000:], stable[-2000:], "increase").classification == "Pass"


@pytest.mark.parametrize(("confidence", "needed"), [(0.98, 5), (0.95, 4), (0.99, 6)])
def test_too_few_samples_is_inconclusive_with_the_number_needed(confidence: float, needed: int) -> None:
    assert samples_needed(confidence) == needed
    assert attainable(needed, needed, confidence) and not attainable(needed - 1, needed - 1, confidence)
    few = needed - 1
    canary, stable = [500.0 + i for i in range(few)], [100.0 + i for i in range(few)]  # all canary higher
    short = classify("latency", canary, stable, "increase", confidence=confidence)
    assert short.classification == "Insufficient" and short.needed == needed
    assert f"needs at least {needed} of each" in short.reason
    config = JudgeProvider.model_validate({"query": "q{{version}}", "confidence": confidence})
    phase, _, message = judge([short], config)
    assert phase is AnalysisPhase.INCONCLUSIVE
    assert "too few samples" in message
    enough = classify(
        "latency", [*canary, 500.0 + few], [*stable, 100.0 + few], "increase", confidence=confidence
    )
    assert enough.classification == "High"


def test_too_few_samples_does_not_hide_a_failure_elsewhere() -> None:
    short = classify("a", [1.0, 2.0], [3.0, 4.0], "increase")
    high = classify("b", latencies(6, median=150.0), latencies(7), "increase")
    assert (short.classification, high.classification) == ("Insufficient", "High")
    assert judge([short, high], CONFIG)[0] is AnalysisPhase.FAILED


@pytest.mark.parametrize(("samples", "by_u", "by_rate"), [(30, 8, 17), (120, 27, 30)])
def test_counts_with_many_zeros_need_the_rate_comparison(samples: int, by_u: int, by_rate: int) -> None:
    # errors per second, Poisson 0.6 against 0.2: three times the errors (the README quotes these figures)
    found_by_u = found_by_rate = false_alarms = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        canary = list(rng.poisson(0.6, samples).astype(float))
        stable = list(rng.poisson(0.2, samples).astype(float))
        twin = list(rng.poisson(0.2, samples).astype(float))
        found_by_u += classify("errors", canary, stable, "increase").classification == "High"
        found_by_rate += compare_rates("errors", canary, stable, "increase").classification == "High"
        false_alarms += compare_rates("errors", twin, stable, "increase").classification == "High"
    assert (found_by_u, found_by_rate, false_alarms) == (by_u, by_rate, 0)


def test_the_rate_comparison_uses_the_exposure_when_given() -> None:
    # the canary serves a tenth of the requests: 10 errors of 1,000 against 90 of 9,000 is the same rate
    same = compare_rates("errors", [10.0], [90.0], "increase", canary_exposure=1000, stable_exposure=9000)
    assert same.classification == "Pass"
    worse = compare_rates("errors", [40.0], [90.0], "increase", canary_exposure=1000, stable_exposure=9000)
    assert worse.classification == "High" and worse.ratio == pytest.approx(4.0)
    assert compare_rates("errors", [0.0] * 5, [0.0] * 5, "increase").classification == "Pass"
    assert compare_rates("errors", [], [1.0], "increase").classification == "Nodata"


def test_the_ratio_guard_covers_a_canary_mean_of_zero() -> None:
    canary, stable = [0.0] * 10, [float(v) for v in range(1, 11)]
    verdict = classify("throughput", canary, stable, "decrease", effect=EffectSize(allowed_decrease=0.5))
    assert verdict.ratio is None  # Kayenta: NaN, and the effect size gate does not hold it back
    assert verdict.classification == "Low"


def test_infinite_samples_rank_above_every_finite_one() -> None:
    stable = latencies(20, 40)
    canary = [float("inf")] * 40  # histogram_quantile above the last bucket
    assert classify("latency", canary, stable, "increase").classification == "High"


def test_a_rate_comparison_total_is_checked_like_the_query() -> None:
    from orchestrator.analysis.validation import validate_metric
    from orchestrator.config.pipeline import Metric

    def judged(total: str) -> Metric:
        errors = {"name": "errors", "query": "sum(e{v='{{version}}'})", "comparison": "rate", "total": total}
        return Metric.model_validate({"name": "j", "provider": {"judge": {"metrics": [errors]}}})

    assert validate_metric(judged("sum(requests{v='{{version}}'})")) == []
    assert validate_metric(judged("sum(requests)")) == [
        "provider.judge.metrics[0].total: total must contain {{version}}, as the query does"
    ]
    with pytest.raises(ValueError, match="total is used only with comparison: rate"):
        JudgeProvider.model_validate({"metrics": [{"name": "p", "query": "q{{version}}", "total": "t"}]})
