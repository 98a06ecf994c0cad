"""The Mann-Whitney U confidence interval and shift estimate, computed the way Kayenta computes them.

Kayenta (`kayenta-mannwhitney`, itself a port of R's `wilcox.test(x, y, conf.int = TRUE, exact = FALSE,
correct = TRUE)`) finds the interval and the estimate as roots in the shift `mu` of the standardised
rank-sum statistic of `x - mu` against `y`:

    W(mu) = (rank sum of x - mu)  - m(m+1)/2 - mn/2      (ranks of the pooled sample, ties averaged)
    f(mu) = (W(mu) - sign(W(mu))/2) / sigma(mu) - z       (continuity correction; sigma corrected for ties)

The interval is [root of f with z = +z_(alpha/2), root with z = -z_(alpha/2)], the estimate the root with
z = 0, each searched between mu_min = min(x) - max(y) and mu_max = max(x) - min(y); a bound whose value
already has the wanted sign is the answer itself (the search is clamped there). Each evaluation ranks
m + n values, so the interval costs O((m + n) log(m + n)) per step of the root finder and never the
m x n pairwise differences: every sample counts, however many there are.

The root finder is Brent's (R's `zeroin`). Kayenta stops it at an absolute tolerance of 1e-4, which is
coarse for values near 0.03 (its own "problem case" ends with the estimate equal to the interval's upper
end); `tolerance` is that figure by default, so Kayenta's published figures are reproduced, and the judge
passes one scaled to the data instead.

`attainable(m, n, confidence)` says whether the interval can be bounded at all: with few samples even the
most extreme rank sum does not reach z, and the "interval" is only the clamp (four samples a side at 98 %).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

KAYENTA_TOLERANCE = 1e-4
_EPSILON = 2.220446049250313e-16
_MAX_ITERATIONS = 1000

Array = NDArray[np.float64]


class TiedObservations(ValueError):
    """Every observation is tied at this shift: the statistic's deviation is 0 (Kayenta throws too)."""


@dataclass(frozen=True)
class ShiftInterval:
    """The estimate of the shift x - y and its confidence interval (lower <= upper, unless inverted by
    the root finder's tolerance, as Kayenta's can be)."""

    lower: float
    upper: float
    estimate: float


def z_quantile(confidence: float) -> float:
    """z_(alpha/2) for a two-sided interval at `confidence` (positive)."""
    from scipy.stats import norm

    return float(-norm.ppf((1.0 - confidence) / 2.0))


def wilcoxon_diff(mu: float, quantile: float, x: Array, y: Array) -> float:
    """f(mu) above: the standardised, continuity-corrected rank-sum statistic of x - mu against y, minus
    `quantile`. Raises TiedObservations when every value is tied."""
    from scipy.stats import rankdata

    m, n = float(len(x)), float(len(y))
    pooled = np.concatenate((x - mu, y))
    ranks = rankdata(pooled, method="average")
    dz = float(ranks[: len(x)].sum()) - m * (m + 1) / 2 - m * n / 2
    correction = 0.5 * (1.0 if dz > 0 else -1.0 if dz < 0 else 0.0)
    _, counts = np.unique(ranks, return_counts=True)
    ties = float(np.sum(counts.astype(np.float64) ** 3 - counts))
    total = m + n
    variance = (m * n / 12.0) * ((total + 1) - ties / (total * (total - 1)))
    sigma = math.sqrt(max(variance, 0.0))
    if sigma == 0:
        raise TiedObservations("cannot compute a confidence interval when all observations are tied")
    return (dz - correction) / sigma - quantile


def brent_root(
    a: float, b: float, fa: float, fb: float, func: Callable[[float], float], tolerance: float
) -> float:
    """A zero of `func` between a and b (fa, fb their values, of opposite signs): Brent's method, with
    the stopping rule of R's zeroin (|step| <= 2 eps |b| + tolerance / 2)."""
    if fa == 0:
        return a
    if fb == 0:
        return b
    c, fc = a, fa
    for _ in range(_MAX_ITERATIONS):
        previous_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol = 2 * _EPSILON * abs(b) + tolerance / 2
        step = (c - b) / 2
        if abs(step) <= tol or fb == 0:
            return b
        if abs(previous_step) >= tol and abs(fa) > abs(fb):
            cb = c - b
            if a == c:  # secant
                t1 = fb / fa
                p, q = cb * t1, 1.0 - t1
            else:  # inverse quadratic interpolation
                q, t1, t2 = fa / fc, fb / fc, fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < 0.75 * cb * q - abs(tol * q) / 2 and p < abs(previous_step * q / 2):
                step = p / q
        if abs(step) < tol:
            step = tol if step > 0 else -tol
        a, fa = b, fb
        b += step
        fb = func(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b


def shift_interval(
    x: Sequence[float] | Array,
    y: Sequence[float] | Array,
    confidence: float = 0.95,
    *,
    tolerance: float = KAYENTA_TOLERANCE,
) -> ShiftInterval:
    """Kayenta's MannWhitney.mannWhitneyUTest(x, y, confidence): the interval and estimate of x - y."""
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if len(xs) == 0 or len(ys) == 0:
        raise ValueError("both samples need at least one value")
    mu_min = float(xs.min() - ys.max())
    mu_max = float(xs.max() - ys.min())
    z = z_quantile(confidence)

    def root(quantile: float) -> float:
        f_lower = wilcoxon_diff(mu_min, quantile, xs, ys)
        f_upper = wilcoxon_diff(mu_max, quantile, xs, ys)
        if f_lower <= 0:
            return mu_min
        if f_upper >= 0:
            return mu_max
        return brent_root(
            mu_min, mu_max, f_lower, f_upper, lambda mu: wilcoxon_diff(mu, quantile, xs, ys), tolerance
        )

    lower, upper = root(z), root(-z)
    f0_lower = wilcoxon_diff(mu_min, 0.0, xs, ys)
    f0_upper = wilcoxon_diff(mu_max, 0.0, xs, ys)
    estimate = brent_root(
        mu_min, mu_max, f0_lower, f0_upper, lambda mu: wilcoxon_diff(mu, 0.0, xs, ys), tolerance
    )
    return ShiftInterval(lower=lower, upper=upper, estimate=estimate)


def attainable(m: int, n: int, confidence: float) -> bool:
    """Whether m and n samples can give an interval at `confidence` that is more than the clamp: the most
    extreme rank sum (every x above every y), standardised without ties, reaches z_(alpha/2)."""
    if m < 1 or n < 1:
        return False
    extreme = m * n / 2 - 0.5
    sigma = math.sqrt(m * n * (m + n + 1) / 12.0)
    return extreme / sigma >= z_quantile(confidence)


def samples_needed(confidence: float) -> int:
    """The fewest samples of each version that make an interval at `confidence` attainable."""
    k = 1
    while not attainable(k, k, confidence):
        k += 1
    return k
