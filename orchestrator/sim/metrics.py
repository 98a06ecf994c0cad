"""Istio-standard request metrics in the Prometheus text format, accumulated from simulated traffic.

Counts accumulate as floats (a flow of 50 requests/s over 0.05 s is 2.5 requests) and are shown
rounded down, which keeps every counter monotonic and `_count` equal to the `+Inf` bucket.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass, field

# Istio's default buckets for istio_request_duration_milliseconds.
BUCKETS_MS = (
    0.5,
    1,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
    300000,
    600000,
    1800000,
    3600000,
)
LATENCY_SIGMA = 0.35  # spread of the simulated log-normal latency around its median

Labels = tuple[tuple[str, str], ...]


def lognormal_cdf(x: float, median: float, sigma: float = LATENCY_SIGMA) -> float:
    if x <= 0:
        return 0.0
    if median <= 0:
        return 1.0
    return 0.5 * (1.0 + math.erf((math.log(x) - math.log(median)) / (sigma * math.sqrt(2.0))))


def lognormal_mean(median: float, sigma: float = LATENCY_SIGMA) -> float:
    return median * math.exp(sigma * sigma / 2.0)


@functools.lru_cache(maxsize=1024)
def _bucket_shares(median_ms: float) -> tuple[float, ...]:
    """The share of requests at or under each bucket bound (cached: a handful of medians recur)."""
    return tuple(lognormal_cdf(le, median_ms) for le in BUCKETS_MS)


@dataclass
class _Series:
    requests: float = 0.0
    duration_sum: float = 0.0
    buckets: list[float] = field(default_factory=lambda: [0.0] * len(BUCKETS_MS))


class IstioMetrics:
    """Counters and histograms keyed by their label sets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[Labels, _Series] = {}

    def observe(self, labels: Labels, count: float, latency_median_ms: float) -> None:
        """Add `count` requests whose latencies follow a log-normal around `latency_median_ms`."""
        if count <= 0:
            return
        with self._lock:
            series = self._series.setdefault(labels, _Series())
            series.requests += count
            series.duration_sum += count * lognormal_mean(latency_median_ms)
            for i, share in enumerate(_bucket_shares(latency_median_ms)):
                series.buckets[i] += count * share

    def snapshot(self) -> dict[Labels, tuple[float, float, list[float]]]:
        with self._lock:
            return {k: (s.requests, s.duration_sum, list(s.buckets)) for k, s in self._series.items()}

    def exposition(self) -> bytes:
        lines = [
            "# HELP istio_requests_total Requests handled by the simulated mesh.",
            "# TYPE istio_requests_total counter",
        ]
        snap = sorted(self.snapshot().items())
        for labels, (requests, _sum, _buckets) in snap:
            lines.append(f"istio_requests_total{_fmt(labels)} {math.floor(requests + 1e-9)}")
        lines += [
            "# HELP istio_request_duration_milliseconds Request durations in the simulated mesh.",
            "# TYPE istio_request_duration_milliseconds histogram",
        ]
        for labels, (requests, total, buckets) in snap:
            for le, value in zip(BUCKETS_MS, buckets, strict=True):
                le_text = f"{le:g}" if isinstance(le, float) else str(le)
                lines.append(
                    f"istio_request_duration_milliseconds_bucket{_fmt(labels, ('le', le_text))} "
                    f"{math.floor(value + 1e-9)}"
                )
            count = math.floor(requests + 1e-9)
            lines.append(f"istio_request_duration_milliseconds_bucket{_fmt(labels, ('le', '+Inf'))} {count}")
            lines.append(f"istio_request_duration_milliseconds_sum{_fmt(labels)} {total:.3f}")
            lines.append(f"istio_request_duration_milliseconds_count{_fmt(labels)} {count}")
        return ("\n".join(lines) + "\n").encode()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(labels: Labels, extra: tuple[str, str] | None = None) -> str:
    pairs = [*labels, extra] if extra else list(labels)
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"
