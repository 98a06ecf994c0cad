"""The judge: is the canary statistically worse than stable? Mann-Whitney U, scored as Kayenta does.

What is compared: for every judged metric, its PromQL query is rendered twice — `{{version}}` set to the
canary's version, then to stable's — and sampled with `query_range` over the last `lookback` at one sample
per `step` (e.g. per-second p99 latency or error ratio of each version). All series' samples of a version
form one sample set; NaN and infinite values are dropped and outliers beyond 3 x IQR removed, as Kayenta's
NetflixACAJudge does before classifying.

Classification (Kayenta's MannWhitneyClassifier): identical samples, or a single value in both, Pass.
Otherwise the Mann-Whitney U test (scipy) gives a p-value, and the Hodges-Lehmann estimate of the shift
(canary - stable) with its distribution-free confidence interval at `confidence` (0.98) decides: the
metric is High when the interval's lower end is above `tolerance` (0.25) x |estimate|, Low when its upper
end is below -tolerance x |estimate|; High counts as a failure for direction increase or either, Low for
decrease or either; anything else is Pass. A significant shift is High or Low only if the ratio of means
(canary / stable) also reaches the metric's `effectSize` (allowedIncrease / allowedDecrease, 1.0 by
default: any ratio), as in Kayenta. A metric without samples is NoData and is not scored.

Score (Kayenta's WeightedSumScorer, one group): 100 x passing / scored metrics, or 0 when a critical metric
fails by at least its criticalIncrease / criticalDecrease ratio. score ≥ passScore → Successful,
≥ marginalScore → Inconclusive ("marginal"), else Failed. When no metric has data at all the measurement is
an Error (retried under consecutiveErrorLimit), not a verdict.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from typing import Any, Literal

import numpy as np

from orchestrator.analysis.base import AnalysisContext, Measurement, finish
from orchestrator.analysis.phases import AnalysisPhase
from orchestrator.analysis.promapi import PrometheusAPI, PrometheusError
from orchestrator.analysis.prometheus import prometheus_address
from orchestrator.analysis.templating import TemplateError
from orchestrator.config.pipeline import EffectSize, JudgeMetric, Metric

SOURCE = "judge"
Direction = Literal["increase", "decrease", "either"]
Classification = Literal["Pass", "High", "Low", "NoData"]
OUTLIER_IQR_FACTOR = 3.0
MAX_SAMPLES = 2000  # pairwise differences grow as the product of both sizes


@dataclass(frozen=True)
class MetricVerdict:
    name: str
    classification: Classification
    failed: bool
    reason: str
    canary_count: int
    stable_count: int
    canary_median: float | None
    stable_median: float | None
    ratio: float | None = None
    p_value: float | None = None
    estimate: float | None = None
    interval: tuple[float, float] | None = None
    critical: bool = False
    critical_failure: bool = False  # a critical metric failed by at least its critical effect size


def clean_samples(values: list[float]) -> list[float]:
    """Finite values without outliers beyond OUTLIER_IQR_FACTOR x IQR (kept when the IQR is 0)."""
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 4:
        return finite
    q1, q3 = np.percentile(finite, [25, 75])
    iqr = q3 - q1
    if iqr == 0:
        return finite
    low, high = q1 - OUTLIER_IQR_FACTOR * iqr, q3 + OUTLIER_IQR_FACTOR * iqr
    return [v for v in finite if low <= v <= high]


def shift_interval(canary: list[float], stable: list[float], confidence: float) -> tuple[float, float, float]:
    """Hodges-Lehmann estimate of canary - stable, and its Mann-Whitney confidence interval (normal)."""
    from scipy import stats  # imported when judging: it costs a second at start-up

    differences = np.sort(np.subtract.outer(np.asarray(canary), np.asarray(stable)).ravel())
    m, n = len(canary), len(stable)
    estimate = float(np.median(differences))
    z = float(stats.norm.ppf(1 - (1 - confidence) / 2))
    k = math.floor(m * n / 2 - z * math.sqrt(m * n * (m + n + 1) / 12))
    if k < 1:
        return estimate, -math.inf, math.inf
    return estimate, float(differences[k - 1]), float(differences[m * n - k])


def classify(
    name: str,
    canary_values: list[float],
    stable_values: list[float],
    direction: Direction,
    *,
    tolerance: float = 0.25,
    confidence: float = 0.98,
    critical: bool = False,
    effect: EffectSize | None = None,
) -> MetricVerdict:
    """One metric's classification, as Kayenta's MannWhitneyClassifier makes it."""
    effect = effect or EffectSize()
    canary = clean_samples(canary_values)[-MAX_SAMPLES:]
    stable = clean_samples(stable_values)[-MAX_SAMPLES:]
    base: dict[str, Any] = {
        "name": name,
        "canary_count": len(canary),
        "stable_count": len(stable),
        "canary_median": float(np.median(canary)) if canary else None,
        "stable_median": float(np.median(stable)) if stable else None,
        "critical": critical,
    }
    if not canary or not stable:
        which = "canary" if not canary else "stable"
        return MetricVerdict(classification="NoData", failed=False, reason=f"no {which} samples", **base)
    ratio = float(np.mean(canary) / np.mean(stable)) if np.mean(stable) != 0 else None
    if sorted(canary) == sorted(stable):
        return MetricVerdict(
            classification="Pass",
            failed=False,
            reason="canary and stable samples are identical",
            ratio=ratio,
            **base,
        )
    if len(set(canary) | set(stable)) == 1:
        return MetricVerdict(
            classification="Pass", failed=False, reason="a single value in both", ratio=ratio, **base
        )
    from scipy import stats

    p_value = float(stats.mannwhitneyu(canary, stable, alternative="two-sided").pvalue)
    estimate, lower, upper = shift_interval(canary, stable, confidence)
    bound = tolerance * abs(estimate)
    classification: Classification = "Pass"
    shift = f"shift {estimate:+.4g} (interval {lower:.4g} … {upper:.4g}, p={p_value:.3g})"
    reason = f"no significant shift: {shift}"
    # Significance first, then the effect size on the ratio of means (skipped when there is no ratio).
    if lower > bound:
        if ratio is None or ratio >= effect.allowed_increase:
            classification, reason = "High", f"canary is higher than stable: {shift}"
        else:
            reason = f"higher by a ratio of {ratio:.3g}, under allowedIncrease {effect.allowed_increase:g}"
    elif upper < -bound:
        if ratio is None or ratio <= effect.allowed_decrease:
            classification, reason = "Low", f"canary is lower than stable: {shift}"
        else:
            reason = f"lower by a ratio of {ratio:.3g}, over allowedDecrease {effect.allowed_decrease:g}"
    failed = (classification == "High" and direction in ("increase", "either")) or (
        classification == "Low" and direction in ("decrease", "either")
    )
    beyond_critical = ratio is None or (
        ratio >= effect.critical_increase if classification == "High" else ratio <= effect.critical_decrease
    )
    return MetricVerdict(
        classification=classification,
        failed=failed,
        reason=reason,
        ratio=ratio,
        p_value=p_value,
        estimate=estimate,
        interval=(lower, upper),
        critical_failure=critical and failed and beyond_critical,
        **base,
    )


def score(verdicts: list[MetricVerdict]) -> float | None:
    """Kayenta's summary score: % of scored metrics that pass; 0 on a critical failure; None if no data."""
    scored = [v for v in verdicts if v.classification != "NoData"]
    if not scored:
        return None
    if any(v.critical_failure for v in scored):
        return 0.0
    return 100.0 * sum(1 for v in scored if not v.failed) / len(scored)


def verdict_phase(value: float, pass_score: float, marginal_score: float) -> AnalysisPhase:
    if value >= pass_score:
        return AnalysisPhase.SUCCESSFUL
    if value >= marginal_score:
        return AnalysisPhase.INCONCLUSIVE
    return AnalysisPhase.FAILED


class JudgeMetricProvider:
    source = SOURCE

    def measure(self, metric: Metric, context: AnalysisContext) -> Measurement:
        started = context.clock.now()
        config = metric.provider.judge
        assert config is not None, "the judge measures judge metrics"
        judged = config.judged_metrics
        queries: list[str] = []

        def error(message: str) -> Measurement:
            return finish(
                metric,
                context,
                phase=AnalysisPhase.ERROR,
                started_at=started,
                source=SOURCE,
                query=" ; ".join(queries) or " ; ".join(j.query for j in judged),
                message=message,
            )

        address = prometheus_address(metric, context)
        if not address:
            return error(
                "the judge needs Prometheus: set provider.judge.address, or the environment's prometheus"
            )
        end = started
        start = end - timedelta(seconds=config.lookback)
        verdicts: list[MetricVerdict] = []
        try:
            api = PrometheusAPI(address, timeout=context.http_timeout)
            for judged_metric in judged:
                samples = {}
                for role, version in (("canary", context.canary_version), ("stable", context.stable_version)):
                    query = context.render(
                        judged_metric.query, where=f"judge metric {judged_metric.name!r}", version=version
                    )
                    queries.append(f"{judged_metric.name} {role}: {query}")
                    series = api.query_range(query, start, end, config.step)
                    samples[role] = [v for s in series for v in s.values]
                verdicts.append(
                    self._classify(
                        judged_metric,
                        samples["canary"],
                        samples["stable"],
                        config.tolerance,
                        config.confidence,
                    )
                )
        except (TemplateError, PrometheusError) as exc:
            return error(str(exc))

        details = {"metrics": [_verdict_dict(v) for v in verdicts], "lookbackSeconds": config.lookback}
        summary = score(verdicts)
        if summary is None:
            reasons = "; ".join(f"{v.name}: {v.reason}" for v in verdicts)
            return replace(error(f"no samples to compare ({reasons})"), details=details)
        phase = verdict_phase(summary, config.pass_score, config.marginal_score)
        label = {AnalysisPhase.SUCCESSFUL: "pass", AnalysisPhase.INCONCLUSIVE: "marginal"}.get(phase, "fail")
        failing = [f"{v.name} {v.classification}" for v in verdicts if v.failed]
        thresholds = f"pass >= {config.pass_score:g}, marginal >= {config.marginal_score:g}"
        message = f"score {summary:.0f} ({label}; {thresholds})"
        if failing:
            message += ": " + ", ".join(failing)
        return finish(
            metric,
            context,
            phase=phase,
            started_at=started,
            source=SOURCE,
            query=" ; ".join(queries),
            message=message,
            value=summary,
            details=details,
        )

    @staticmethod
    def _classify(
        judged: JudgeMetric, canary: list[float], stable: list[float], tolerance: float, confidence: float
    ) -> MetricVerdict:
        return classify(
            judged.name,
            canary,
            stable,
            judged.direction,
            tolerance=tolerance,
            confidence=confidence,
            critical=judged.critical,
            effect=judged.effect_size,
        )


def _verdict_dict(verdict: MetricVerdict) -> dict[str, Any]:
    out = asdict(verdict)
    out["interval"] = list(verdict.interval) if verdict.interval else None
    return out
