"""The "direct" source: the built-in gates' figures computed from scrapes of Istio-shaped /metrics.

When no Prometheus is configured, a prometheus metric that declares `direct: request-success-rate` or
`direct: request-duration-p99` (the built-in templates do) is measured here instead: the mesh's /metrics
text is scraped, and the figure is computed from the increase of the counters between two successive
scrapes — what `rate(...[window])` computes in Prometheus, over the time between the scrapes instead of the
window. The selection is the built-in queries' own: `reporter="destination"`, the context's namespace,
`destination_workload` matching the canary workload (anchored, as PromQL's `=~`), and `destination_version`
equal to the canary version. The result has the same shape as the Prometheus answer (`[value]`, `[NaN]` for
no requests between the scrapes, `[]` for no series at all), so the same conditions apply unchanged.

The provider keeps the last scrape of each endpoint between measurements; the first measurement of a run
scrapes twice, `min(window, interval)` apart (at least one second), on the context's clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import httpx
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.analysis.base import AnalysisContext, Measurement, assess, start_measurement
from orchestrator.analysis.phases import AnalysisPhase
from orchestrator.config.durations import parse_duration
from orchestrator.config.pipeline import Metric

SOURCE = "direct"
REQUESTS_TOTAL = "istio_requests_total"
DURATION_BUCKET = "istio_request_duration_milliseconds_bucket"
MIN_GAP_SECONDS = 1.0

SeriesKey = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Scrape:
    at: datetime
    samples: dict[tuple[str, SeriesKey], float]


@dataclass(frozen=True)
class IstioSelector:
    """The built-in queries' label matchers."""

    namespace: str
    workload_pattern: str
    version: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        return (
            labels.get("reporter") == "destination"
            and labels.get("destination_workload_namespace") == self.namespace
            and re.fullmatch(self.workload_pattern, labels.get("destination_workload", "")) is not None
            and labels.get("destination_version") == self.version
        )

    def describe(self) -> str:
        return (
            f'reporter="destination", destination_workload_namespace="{self.namespace}", '
            f'destination_workload=~"{self.workload_pattern}", destination_version="{self.version}"'
        )


def parse_scrape(text: str, at: datetime) -> Scrape:
    """The counters and buckets of one /metrics text, keyed by sample name and labels."""
    samples: dict[tuple[str, SeriesKey], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in (REQUESTS_TOTAL, DURATION_BUCKET):
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return Scrape(at=at, samples=samples)


def increases(
    previous: Scrape, current: Scrape, name: str, selector: IstioSelector
) -> list[tuple[dict[str, str], float]]:
    """Per matching series, how much the counter grew (a drop is a reset: the new value is the growth)."""
    grown: list[tuple[dict[str, str], float]] = []
    for (sample_name, key), value in current.samples.items():
        labels = dict(key)
        if sample_name != name or not selector.matches(labels):
            continue
        before = previous.samples.get((sample_name, key))
        # A series absent before is new (a new pod): it grew from zero.
        grown.append((labels, value if before is None or value < before else value - before))
    return grown


def success_rate(previous: Scrape, current: Scrape, selector: IstioSelector) -> list[float]:
    """100 x non-5xx / all requests between the scrapes; [] without series, [NaN] without requests."""
    grown = increases(previous, current, REQUESTS_TOTAL, selector)
    if not grown:
        return []
    total = sum(value for _, value in grown)
    good = sum(value for labels, value in grown if not labels.get("response_code", "").startswith("5"))
    return [good / total * 100 if total > 0 else math.nan]


def latency_quantile(
    quantile: float, previous: Scrape, current: Scrape, selector: IstioSelector
) -> list[float]:
    """histogram_quantile(q, sum by (le) of the bucket increases); [] without series."""
    grown = increases(previous, current, DURATION_BUCKET, selector)
    if not grown:
        return []
    per_bound: dict[float, float] = {}
    for labels, value in grown:
        bound = float(labels["le"]) if "le" in labels else math.nan
        if not math.isnan(bound):
            per_bound[bound] = per_bound.get(bound, 0.0) + value
    return [histogram_quantile(quantile, sorted(per_bound.items()))]


def histogram_quantile(quantile: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile over cumulative (upper bound, count) buckets, sorted by bound."""
    if math.isnan(quantile) or quantile < 0:
        return -math.inf
    if quantile > 1:
        return math.inf
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]):
        return math.nan
    # Counts must not decrease with the bound; scrapes taken mid-update can break that slightly.
    fixed: list[tuple[float, float]] = []
    highest = 0.0
    for bound, count in buckets:
        highest = max(highest, count)
        fixed.append((bound, highest))
    observations = fixed[-1][1]
    if observations == 0:
        return math.nan
    rank = quantile * observations
    index = next(i for i, (_, count) in enumerate(fixed) if count >= rank)
    if index == len(fixed) - 1:
        return fixed[-2][0]
    if index == 0 and fixed[0][0] <= 0:
        return fixed[0][0]
    start, end, count = 0.0, fixed[index][0], fixed[index][1]
    if index > 0:
        start = fixed[index - 1][0]
        count -= fixed[index - 1][1]
        rank -= fixed[index - 1][1]
    return start + (end - start) * (rank / count)


FIGURES = {
    "request-success-rate": "success rate (%) of",
    "request-duration-p99": "p99 latency (ms) of",
}


class MetricsScrapeProvider:
    source = SOURCE

    def __init__(self) -> None:
        self._last: dict[str, Scrape] = {}

    def measure(self, metric: Metric, context: AnalysisContext) -> Measurement:
        config = metric.provider.prometheus
        figure = config.direct if config is not None else None
        selector = IstioSelector(
            namespace=context.namespace,
            workload_pattern=context.canary_workload_name,
            version=context.canary_version,
        )
        series = REQUESTS_TOTAL if figure == "request-success-rate" else DURATION_BUCKET
        description = (
            f"{FIGURES.get(figure or '', figure)} {series}{{{selector.describe()}}}"
            f" from scrapes of {', '.join(context.metrics_urls) or 'nothing'}"
        )

        taking = start_measurement(metric, context, source=SOURCE, query=description)
        error = taking.error

        if figure is None:
            return error(
                "no Prometheus address, and this query has no direct equivalent; only the built-in "
                "request-success-rate and request-duration-p99 can be computed from /metrics scrapes"
            )
        if not context.metrics_urls:
            return error("no Prometheus address and no /metrics endpoint to scrape")

        try:
            current = {url: self._scrape(url, context) for url in context.metrics_urls}
            previous: dict[str, Scrape] = {}
            for url, scrape in current.items():
                before = self._last.get(url)
                if before is None or (scrape.at - before.at).total_seconds() < MIN_GAP_SECONDS:
                    before = scrape
                previous[url] = before
            if any(previous[url] is current[url] for url in current):
                # First measurement: wait a little on the context's clock and scrape again.
                context.clock.sleep(_first_gap(metric, context))
                current = {url: self._scrape(url, context) for url in context.metrics_urls}
        except (httpx.HTTPError, ValueError) as exc:
            return error(f"cannot scrape metrics: {exc}")
        self._last.update(current)

        merged_previous = _merge(previous[url] for url in context.metrics_urls)
        merged_current = _merge(current[url] for url in context.metrics_urls)
        if figure == "request-success-rate":
            value = success_rate(merged_previous, merged_current, selector)
        else:
            value = latency_quantile(0.99, merged_previous, merged_current, selector)
        seconds = (merged_current.at - merged_previous.at).total_seconds()
        phase, message = assess(metric, context, value)
        if phase is AnalysisPhase.ERROR and value == []:
            message = f"no matching series in the scraped metrics; {message}"
        details: dict[str, object] = {
            "figure": figure,
            "seconds": round(seconds, 3),
            "endpoints": list(context.metrics_urls),
        }
        stable = context.as_stable()
        if stable is not None:
            # The stable's figure over the same scrapes, for comparison only: it never decides the phase.
            stable_selector = IstioSelector(
                namespace=stable.namespace,
                workload_pattern=stable.canary_workload_name,
                version=stable.canary_version,
            )
            if figure == "request-success-rate":
                details["stable"] = success_rate(merged_previous, merged_current, stable_selector)
            else:
                details["stable"] = latency_quantile(0.99, merged_previous, merged_current, stable_selector)
        return taking.done(phase, message, value=value, details=details)

    def _scrape(self, url: str, context: AnalysisContext) -> Scrape:
        response = httpx.get(url, timeout=context.http_timeout)
        if response.status_code != 200:
            raise ValueError(f"{url} answered HTTP {response.status_code}")
        return parse_scrape(response.text, context.clock.now())


def _first_gap(metric: Metric, context: AnalysisContext) -> float:
    try:
        window = parse_duration(context.args.get("window", context.window))
    except ValueError:
        window = metric.interval
    return max(MIN_GAP_SECONDS, min(window, metric.interval))


def _merge(scrapes: Iterable[Scrape]) -> Scrape:
    """Several endpoints as one (series keys carry their endpoint's labels already; earliest time)."""
    merged: dict[tuple[str, SeriesKey], float] = {}
    times: list[datetime] = []
    for index, scrape in enumerate(scrapes):
        times.append(scrape.at)
        for (name, key), value in scrape.samples.items():
            merged[(name, (*key, ("__endpoint__", str(index))))] = value
    return Scrape(at=min(times), samples=merged)
