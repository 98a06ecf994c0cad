"""The judge: is the canary statistically worse than stable? Kayenta's classifier and scorer.

What is compared: for every judged metric, its PromQL query is rendered twice — `{{version}}` set to the
canary's version, then to stable's — and sampled with `query_range` over the last `lookback` at one sample
per `step`. Every sample of every series of a version counts; nothing is truncated.

Preprocessing (Kayenta's NetflixACAJudge): NaN values are removed (its default nanStrategy). Outliers are
kept unless `outliers: remove`, which drops values outside Kayenta's fences: below the smaller of the 1st
percentile and Q1 - 3 IQR, above the larger of the 99th percentile and Q3 + 3 IQR (`outlierFactor`).
Not in Kayenta: an infinite value (histogram_quantile above the last bucket) is kept and ranks above every
finite value, where Kayenta's root finder would fail on it.

Classification of one metric (Kayenta's MannWhitneyClassifier, in its order):
- no canary or no stable samples → Nodata (NodataFailMetric with `mustHaveData`, unless critical);
- the same samples on both sides, or one value in all → Pass;
- too few samples for the interval at `confidence` to be bounded (mannwhitney.attainable) → Insufficient,
  with the number a verdict needs (not in Kayenta, whose interval is then only the search range clamped);
- otherwise the Mann-Whitney confidence interval of the shift canary - stable and its estimate
  (mannwhitney.shift_interval, Kayenta's algorithm; Gaussian noise of 1e-5 x the value when each side
  holds a single value, as Kayenta adds it): High when the interval's lower end is above
  `tolerance` x |estimate| and the direction is increase or either, Low when its upper end is below
  -tolerance x |estimate| and the direction is decrease or either; each only when the ratio of means
  canary / stable reaches `allowedIncrease` / `allowedDecrease` (the ratio is not computed when either mean
  is 0, and then does not hold the classification back, as in Kayenta); anything else Pass. A critical metric
  that is High (Low) by at least criticalIncrease (criticalDecrease) is a critical failure.
- `comparison: rate` (not in Kayenta, for counters): the canary's events per unit of exposure against
  stable's, with the exact conditional test of two Poisson rates (canary events ~ Binomial(all events,
  canary exposure share)); significant at 1 - confidence and past the effect size → High or Low.

Score (Kayenta's WeightedSumScorer, one group): 0 when a critical metric is anything but Pass (a critical
metric without data included), or when half the metrics or more are Nodata; otherwise
100 x Pass / (Pass + High + Low + NodataFailMetric), rounded to 2 decimals. score >= passScore →
Successful, >= marginalScore → Inconclusive ("marginal"), else Failed. When a metric is Insufficient and
the rest does not already fail, the measurement is Inconclusive, naming the samples needed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Literal

import numpy as np

from orchestrator.analysis.base import AnalysisContext, Measurement, start_measurement
from orchestrator.analysis.mannwhitney import (
    TiedObservations,
    attainable,
    samples_needed,
    shift_interval,
)
from orchestrator.analysis.phases import AnalysisPhase
from orchestrator.analysis.promapi import PrometheusAPI, PrometheusError
from orchestrator.analysis.prometheus import prometheus_address
from orchestrator.analysis.templating import TemplateError
from orchestrator.config.pipeline import EffectSize, JudgeMetric, JudgeProvider, Metric

SOURCE = "judge"
Direction = Literal["increase", "decrease", "either"]
Classification = Literal["Pass", "High", "Low", "Nodata", "NodataFailMetric", "Insufficient", "Error"]
NODATA_THRESHOLD = 50.0  # Kayenta: this % of metrics or more without data scores 0
NOISE_SCALE = 1e-5  # Kayenta: Gaussian noise of this fraction of the value when each side is one value
ROOT_TOLERANCE = 1e-6  # of the search range; Kayenta's 1e-4 is absolute (see mannwhitney)


@dataclass(frozen=True)
class MetricVerdict:
    name: str
    classification: Classification
    reason: str
    canary_count: int
    stable_count: int
    canary_median: float | None = None
    stable_median: float | None = None
    ratio: float | None = None
    estimate: float | None = None
    interval: tuple[float, float] | None = None
    critical: bool = False  # Kayenta's result.critical: this classification fails a critical metric
    needed: int | None = None  # for Insufficient: the samples of each version a verdict needs

    @property
    def failed(self) -> bool:
        return self.classification in ("High", "Low", "NodataFailMetric")


def remove_outliers(values: list[float], factor: float = 3.0, *, widen: bool = True) -> list[float]:
    """Kayenta's IQRDetector: keep values within Q1 - factor IQR .. Q3 + factor IQR, widened (its
    reduceSensitivity, which the judge uses) to the 1st and 99th percentiles when those lie further out.
    Percentiles are estimated as R-7 (numpy's default), as Kayenta's are."""
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 2:
        return list(values)
    p1, q1, q3, p99 = np.percentile(finite, [1, 25, 75, 99])
    iqr = q3 - q1
    lower, upper = q1 - factor * iqr, q3 + factor * iqr
    if widen:
        lower, upper = min(p1, lower), max(p99, upper)
    return [v for v in values if lower <= v <= upper]


def prepare(values: list[float], *, outliers: str = "keep", factor: float = 3.0) -> list[float]:
    """NaN removed (Kayenta's default nanStrategy), then outliers removed only when asked."""
    kept = [v for v in values if not math.isnan(v)]
    return remove_outliers(kept, factor) if outliers == "remove" else kept


def mean_ratio(canary: list[float], stable: list[float]) -> float | None:
    """Kayenta's meanRatio, canary / stable; None (Kayenta: NaN) when either mean is 0 or not finite."""
    canary_mean, stable_mean = float(np.mean(canary)), float(np.mean(stable))
    if canary_mean == 0 or stable_mean == 0:
        return None
    ratio = canary_mean / stable_mean
    return ratio if math.isfinite(ratio) else None


def _finite_ranks(canary: list[float], stable: list[float]) -> tuple[list[float], list[float]]:
    """Infinite samples replaced by values beyond every finite one, so they rank first or last."""
    finite = [v for v in (*canary, *stable) if math.isfinite(v)]
    if len(finite) == len(canary) + len(stable):
        return canary, stable
    low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
    span = (high - low) or 1.0

    def fix(v: float) -> float:
        if v == math.inf:
            return high + span
        if v == -math.inf:
            return low - span
        return v

    return [fix(v) for v in canary], [fix(v) for v in stable]


def _with_noise(values: list[float], seed: int) -> list[float]:
    """Kayenta's addGaussianNoise for a side that is one repeated value (seeded: verdicts reproduce)."""
    scale = abs(values[0]) * NOISE_SCALE
    if scale == 0:
        return values
    rng = np.random.default_rng(seed)
    return [float(v) for v in np.asarray(values) + rng.normal(0.0, scale, len(values))]


def classify(
    name: str,
    canary_values: list[float],
    stable_values: list[float],
    direction: Direction,
    *,
    tolerance: float = 0.25,
    confidence: float = 0.98,
    critical: bool = False,
    must_have_data: bool = False,
    effect: EffectSize | None = None,
    outliers: str = "keep",
    outlier_factor: float = 3.0,
) -> MetricVerdict:
    """One metric's classification: Kayenta's MannWhitneyClassifier, with the two additions the module
    doc names (Insufficient, infinite samples)."""
    effect = effect or EffectSize()
    canary = prepare(canary_values, outliers=outliers, factor=outlier_factor)
    stable = prepare(stable_values, outliers=outliers, factor=outlier_factor)
    base: dict[str, Any] = {
        "name": name,
        "canary_count": len(canary),
        "stable_count": len(stable),
        "canary_median": float(np.median(canary)) if canary else None,
        "stable_median": float(np.median(stable)) if stable else None,
    }
    if not canary or not stable:
        which = "canary" if not canary else "stable"
        reason = f"no {which} samples (missing data)"
        if must_have_data and not critical:
            return MetricVerdict(classification="NodataFailMetric", reason=reason, **base)
        return MetricVerdict(classification="Nodata", reason=reason, critical=critical, **base)
    if sorted(canary) == sorted(stable):
        return MetricVerdict(classification="Pass", reason="canary and stable samples are identical", **base)
    if len(set(canary) | set(stable)) == 1:
        return MetricVerdict(classification="Pass", reason="a single value in both", **base)
    if not attainable(len(canary), len(stable), confidence):
        needed = samples_needed(confidence)
        return MetricVerdict(
            classification="Insufficient",
            reason=(
                f"{len(canary)} canary and {len(stable)} stable samples cannot bound a "
                f"{confidence:.0%} interval; a verdict needs at least {needed} of each "
                "(lengthen lookback or shorten step)"
            ),
            needed=needed,
            **base,
        )
    ratio = mean_ratio(canary, stable)
    x, y = _finite_ranks(canary, stable)
    if len(set(x)) == 1 and len(set(y)) == 1:
        x, y = _with_noise(x, 1), _with_noise(y, 2)
    span = max(x) - min(y) - (min(x) - max(y))
    try:
        result = shift_interval(x, y, confidence, tolerance=ROOT_TOLERANCE * span if span > 0 else 1e-12)
    except TiedObservations as exc:
        return MetricVerdict(classification="Error", reason=str(exc), critical=critical, ratio=ratio, **base)
    bound = tolerance * abs(result.estimate)
    shift = f"shift {result.estimate:+.4g} (interval {result.lower:.4g} … {result.upper:.4g})"
    classification: Classification = "Pass"
    reason = f"no significant shift: {shift}"
    if direction in ("increase", "either") and result.lower > bound:
        if ratio is None or ratio >= effect.allowed_increase:
            classification, reason = "High", f"canary is higher than stable: {shift}"
        else:
            reason = f"higher by a ratio of {ratio:.3g}, under allowedIncrease {effect.allowed_increase:g}"
    elif direction in ("decrease", "either") and result.upper < -bound:
        if ratio is None or ratio <= effect.allowed_decrease:
            classification, reason = "Low", f"canary is lower than stable: {shift}"
        else:
            reason = f"lower by a ratio of {ratio:.3g}, over allowedDecrease {effect.allowed_decrease:g}"
    return MetricVerdict(
        classification=classification,
        reason=reason,
        ratio=ratio,
        estimate=result.estimate,
        interval=(result.lower, result.upper),
        critical=critical and _beyond_critical(classification, ratio, effect),
        **base,
    )


def _beyond_critical(classification: Classification, ratio: float | None, effect: EffectSize) -> bool:
    if classification == "High":
        return ratio is None or ratio >= effect.critical_increase
    if classification == "Low":
        return ratio is None or ratio <= effect.critical_decrease
    return False


def compare_rates(
    name: str,
    canary_events: list[float],
    stable_events: list[float],
    direction: Direction,
    *,
    canary_exposure: float | None = None,
    stable_exposure: float | None = None,
    confidence: float = 0.98,
    critical: bool = False,
    must_have_data: bool = False,
    effect: EffectSize | None = None,
) -> MetricVerdict:
    """Counters: are the canary's events (errors per sample, or per request with exposures) more or less
    frequent than stable's? The exact conditional test of two Poisson rates; exposures default to the
    number of samples."""
    from scipy.stats import binomtest

    effect = effect or EffectSize()
    canary = [v for v in canary_events if math.isfinite(v)]
    stable = [v for v in stable_events if math.isfinite(v)]
    base: dict[str, Any] = {"name": name, "canary_count": len(canary), "stable_count": len(stable)}
    if not canary or not stable:
        which = "canary" if not canary else "stable"
        reason = f"no {which} samples (missing data)"
        if must_have_data and not critical:
            return MetricVerdict(classification="NodataFailMetric", reason=reason, **base)
        return MetricVerdict(classification="Nodata", reason=reason, critical=critical, **base)
    exposure_c = canary_exposure if canary_exposure is not None else float(len(canary))
    exposure_s = stable_exposure if stable_exposure is not None else float(len(stable))
    events_c, events_s = round(sum(canary)), round(sum(stable))
    total = events_c + events_s
    if total == 0:
        return MetricVerdict(classification="Pass", reason="no events in either version", **base)
    if exposure_c <= 0 or exposure_s <= 0:
        which = "canary" if exposure_c <= 0 else "stable"
        return MetricVerdict(
            classification="Nodata", reason=f"no {which} exposure", critical=critical, **base
        )
    rate_c, rate_s = events_c / exposure_c, events_s / exposure_s
    ratio = rate_c / rate_s if rate_s > 0 and rate_c > 0 else None
    p_value = float(binomtest(events_c, total, exposure_c / (exposure_c + exposure_s)).pvalue)
    rates = f"{rate_c:.4g} against {rate_s:.4g} per unit (p={p_value:.3g})"
    significant = p_value < 1 - confidence
    classification: Classification = "Pass"
    reason = f"no significant difference in rate: {rates}"
    higher = significant and rate_c > rate_s and direction in ("increase", "either")
    lower = significant and rate_c < rate_s and direction in ("decrease", "either")
    if higher and (ratio is None or ratio >= effect.allowed_increase):
        classification, reason = "High", f"the canary's rate is higher: {rates}"
    elif lower and (ratio is None or ratio <= effect.allowed_decrease):
        classification, reason = "Low", f"the canary's rate is lower: {rates}"
    return MetricVerdict(
        classification=classification,
        reason=reason,
        ratio=ratio,
        estimate=rate_c - rate_s,
        critical=critical and _beyond_critical(classification, ratio, effect),
        **base,
    )


def score(verdicts: list[MetricVerdict]) -> tuple[float, str]:
    """Kayenta's WeightedSumScorer over one group: the score and, when it is forced to 0, why."""
    if not verdicts:
        return 0.0, "no metrics to judge"
    critical = [v for v in verdicts if v.critical and v.classification != "Pass"]
    if critical:
        return 0.0, f"critical metric {critical[0].name} is {critical[0].classification}"
    nodata = sum(1 for v in verdicts if v.classification == "Nodata")
    if nodata / len(verdicts) * 100 >= NODATA_THRESHOLD:
        return (
            0.0,
            f"{NODATA_THRESHOLD:g}% or more of the metrics returned no data ({nodata} of {len(verdicts)})",
        )
    counted = [v for v in verdicts if v.classification in ("Pass", "High", "Low", "NodataFailMetric")]
    if not counted:
        return 100.0, ""  # Kayenta: a group without data scores 100 (the Nodata rule above came first)
    passing = sum(1 for v in counted if v.classification == "Pass")
    return round(100.0 * passing / len(counted), 2), ""


def verdict_phase(value: float, pass_score: float, marginal_score: float) -> AnalysisPhase:
    """Kayenta's ThresholdScoreClassifier: Pass, Marginal (Inconclusive here) or Fail."""
    if value >= pass_score:
        return AnalysisPhase.SUCCESSFUL
    if value >= marginal_score:
        return AnalysisPhase.INCONCLUSIVE
    return AnalysisPhase.FAILED


def judge(verdicts: list[MetricVerdict], config: JudgeProvider) -> tuple[AnalysisPhase, float, str]:
    """The phase, score and message of one judgement."""
    value, forced = score(verdicts)
    phase = verdict_phase(value, config.pass_score, config.marginal_score)
    label = {AnalysisPhase.SUCCESSFUL: "pass", AnalysisPhase.INCONCLUSIVE: "marginal"}.get(phase, "fail")
    thresholds = f"pass >= {config.pass_score:g}, marginal >= {config.marginal_score:g}"
    message = f"score {value:g} ({label}; {thresholds})"
    if forced:
        message += f": {forced}"
    failing = [f"{v.name} {v.classification}" for v in verdicts if v.failed or v.classification == "Nodata"]
    if failing and not forced:
        message += ": " + ", ".join(failing)
    insufficient = [v for v in verdicts if v.classification == "Insufficient"]
    if insufficient and phase is not AnalysisPhase.FAILED:
        reasons = "; ".join(f"{v.name}: {v.reason}" for v in insufficient)
        return AnalysisPhase.INCONCLUSIVE, value, f"too few samples to judge ({reasons}); {message}"
    return phase, value, message


class JudgeMetricProvider:
    source = SOURCE

    def measure(self, metric: Metric, context: AnalysisContext) -> Measurement:
        config = metric.provider.judge
        assert config is not None, "the judge measures judge metrics"
        judged = config.judged_metrics
        taking = start_measurement(metric, context, source=SOURCE, query=" ; ".join(j.query for j in judged))
        address = prometheus_address(metric, context)
        if not address:
            return taking.error(
                "the judge needs Prometheus: set provider.judge.address, or the environment's prometheus"
            )
        end = taking.started_at
        start = end - timedelta(seconds=config.lookback)
        queries: list[str] = []
        verdicts: list[MetricVerdict] = []
        try:
            api = PrometheusAPI(address, timeout=context.http_timeout)

            def sample(judged_metric: JudgeMetric, text: str, role: str, version: str) -> list[float]:
                query = context.render(text, where=f"judge metric {judged_metric.name!r}", version=version)
                queries.append(f"{judged_metric.name} {role}: {query}")
                return [v for s in api.query_range(query, start, end, config.step) for v in s.values]

            versions = (("canary", context.canary_version), ("stable", context.stable_version))
            for judged_metric in judged:
                samples = {role: sample(judged_metric, judged_metric.query, role, v) for role, v in versions}
                exposure: dict[str, float | None] = {"canary": None, "stable": None}
                if judged_metric.total is not None:
                    for role, version in versions:
                        values = sample(judged_metric, judged_metric.total, f"{role} total", version)
                        exposure[role] = sum(v for v in values if math.isfinite(v))
                verdicts.append(_judge_metric(judged_metric, samples, exposure, config))
        except (TemplateError, PrometheusError) as exc:
            taking.query = " ; ".join(queries) or taking.query
            return taking.error(str(exc))
        taking.query = " ; ".join(queries)
        phase, value, message = judge(verdicts, config)
        details = {"metrics": [_verdict_dict(v) for v in verdicts], "lookbackSeconds": config.lookback}
        return taking.done(phase, message, value=value, details=details)


def _judge_metric(
    judged: JudgeMetric,
    samples: dict[str, list[float]],
    exposure: dict[str, float | None],
    config: JudgeProvider,
) -> MetricVerdict:
    if judged.comparison == "rate":
        return compare_rates(
            judged.name,
            samples["canary"],
            samples["stable"],
            judged.direction,
            canary_exposure=exposure["canary"],
            stable_exposure=exposure["stable"],
            confidence=config.confidence,
            critical=judged.critical,
            must_have_data=judged.must_have_data,
            effect=judged.effect_size,
        )
    return classify(
        judged.name,
        samples["canary"],
        samples["stable"],
        judged.direction,
        tolerance=config.tolerance,
        confidence=config.confidence,
        critical=judged.critical,
        must_have_data=judged.must_have_data,
        effect=judged.effect_size,
        outliers=config.outliers,
        outlier_factor=config.outlier_factor,
    )


def _verdict_dict(verdict: MetricVerdict) -> dict[str, Any]:
    out = asdict(verdict)
    out["interval"] = list(verdict.interval) if verdict.interval else None
    out["failed"] = verdict.failed
    return out
