"""A Grafana dashboard's queries, as Grafana would send them to Prometheus.

Grafana is not installed on our machines (nor packaged by Debian), so the tests do what it does with a
panel's target before Prometheus sees it, and then ask the real Prometheus:

1. Template variables (`$name`, `${name}`, `[[name]]`) are replaced by the Prometheus data source's rules
   (`interpolateQueryExpr`): "All" is the variable's `allValue` as it stands; a variable that is neither
   multi-value nor include-all gets its value with `\\` and `'` escaped; otherwise each value is
   regex-escaped for a PromQL string (a backslash doubled) and several are joined as `(a|b)`.
2. The built-in interval and range variables are replaced as Grafana's Prometheus backend does
   (`interpolateVariables` in `pkg/tsdb/prometheus/models/query.go`): `$__range` is the range in whole
   seconds with `s`, `$__interval` the panel's interval, and `$__rate_interval` is
   `max($__interval + step, 4 * step)` written as Go writes a duration (`4s`, `1m0s`), where the step is
   the interval Grafana calculates from the time range, the panel's max data points and the data source's
   scrape interval (its minimum), rounded as `kbn.roundInterval` rounds it.

A target with `instant: true` is an instant query (`/api/v1/query` at the range's end); any other is a
range query (`/api/v1/query_range` over the range at the step). Either answer must be HTTP 200 with
status `success`: Prometheus answers 400 `bad_data` to PromQL it cannot parse.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ALL = "$__all"  # what Grafana stores for a variable set to "All"

# Grafana's kbn.roundInterval: (at most this many milliseconds, rounds to this many milliseconds).
_ROUNDING_MS = (
    (10, 1),
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (24_300_000, 21_600_000),
    (64_800_000, 43_200_000),
)
SAFE_RESOLUTION = 11_000  # Grafana's most points per series it lets a query ask for


def round_interval_ms(interval_ms: float) -> int:
    for bound, rounded in _ROUNDING_MS:
        if interval_ms <= bound:
            return rounded
    return 86_400_000


def go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration.String writes it, for whole seconds or less: 500ms, 4s, 1m0s."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms" if seconds else "0s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range and what Grafana derives from it for one panel."""

    end: float  # Unix seconds
    seconds: float  # its length
    scrape_interval: float = 15.0  # the data source's "Scrape interval" (Grafana's default: 15 s)
    max_data_points: int = 1_000  # about a panel's width in pixels

    @property
    def start(self) -> float:
        return self.end - self.seconds

    @property
    def step(self) -> float:
        calculated = max(
            round_interval_ms(self.seconds * 1000 / self.max_data_points) / 1000, self.scrape_interval
        )
        safe = round_interval_ms(self.seconds * 1000 / SAFE_RESOLUTION) / 1000
        return max(calculated, safe)

    @property
    def interval(self) -> float:
        return self.step  # `$__interval` as the front end computes it: the same calculation

    @property
    def rate_interval(self) -> float:
        return max(self.interval + self.step, 4 * self.step)


def builtins(time_range: TimeRange) -> dict[str, str]:
    interval, rate = time_range.interval, time_range.rate_interval
    seconds = round(time_range.seconds)
    return {
        "__interval_ms": str(round(interval * 1000)),
        "__interval": go_duration(interval),
        "__range_ms": str(round(time_range.seconds * 1000)),
        "__range_s": str(seconds),
        "__range": f"{seconds}s",
        "__rate_interval_ms": str(round(rate * 1000)),
        "__rate_interval": go_duration(rate),
    }


def _regular_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _regex_escape(value: str) -> str:
    value = value.replace("\\", "\\\\\\\\")
    return re.sub(r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m.group(0), value)


def variable_value(variable: Mapping[str, Any], selected: str | Sequence[str]) -> str:
    """What Grafana's Prometheus data source puts in a query for a variable set to `selected`."""
    if selected == ALL or selected == [ALL]:
        if variable.get("allValue"):
            return str(variable["allValue"])
        raise ValueError(f"variable {variable['name']!r} has no allValue; Grafana would list every value")
    values = [selected] if isinstance(selected, str) else list(selected)
    if not variable.get("multi") and not variable.get("includeAll"):
        return _regular_escape(values[0])
    escaped = [_regex_escape(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def interpolate(
    expr: str,
    dashboard: Mapping[str, Any],
    selection: Mapping[str, str | Sequence[str]],
    time_range: TimeRange,
) -> str:
    """`expr` with the dashboard's variables (as selected) and Grafana's built-ins replaced."""
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    values = {name: variable_value(variables[name], chosen) for name, chosen in selection.items()}
    values.update(builtins(time_range))

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in values:
            raise KeyError(f"the query uses ${name}, which is neither a variable selected nor a built-in")
        return values[name]

    # A name is taken whole (`$__range_s` is not `$__range` and an `_s`), as Grafana's ordered replaces do.
    return re.sub(r"\$\{(\w+)\}|\[\[(\w+)\]\]|\$(\w+)", replace, expr)


@dataclass(frozen=True)
class Target:
    panel: str
    ref: str
    expr: str
    instant: bool


def load(path: Path) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that queries, those inside collapsed rows too."""
    for panel in dashboard["panels"]:
        if panel.get("type") == "row":
            yield from (p for p in panel.get("panels") or [] if p.get("targets"))
        elif panel.get("targets"):
            yield panel


def targets(dashboard: Mapping[str, Any]) -> list[Target]:
    return [
        Target(panel["title"], target["refId"], target["expr"], bool(target.get("instant")))
        for panel in panels(dashboard)
        for target in panel["targets"]
    ]


@dataclass(frozen=True)
class Answer:
    query: str
    result: list[dict[str, Any]]  # the vector (instant) or matrix (range) Prometheus answered

    def values(self) -> list[float]:
        """The latest value of each series."""
        found = []
        for series in self.result:
            point = series["value"] if "value" in series else series["values"][-1]
            found.append(float(point[1]))
        return found

    def by(self, label: str) -> dict[str, float]:
        return {s["metric"].get(label, ""): v for s, v in zip(self.result, self.values(), strict=True)}


class QueryError(AssertionError):
    pass


def run(prometheus_url: str, target: Target, query: str, time_range: TimeRange) -> Answer:
    """Send the interpolated query as Grafana would; QueryError unless Prometheus answers 200 success."""
    if target.instant:
        response = httpx.get(
            f"{prometheus_url}/api/v1/query", params={"query": query, "time": time_range.end}, timeout=10
        )
    else:
        step = time_range.step
        response = httpx.get(
            f"{prometheus_url}/api/v1/query_range",
            params={
                "query": query,
                # aligned to the step, as Grafana aligns a range query
                "start": math.floor(time_range.start / step) * step,
                "end": math.floor(time_range.end / step) * step,
                "step": step,
            },
            timeout=10,
        )
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200 or body.get("status") != "success":
        raise QueryError(
            f"{target.panel!r} {target.ref}: Prometheus answered {response.status_code} "
            f"{body.get('errorType', '')}: {body.get('error', response.text)}\n  query: {query}"
        )
    return Answer(query, body["data"]["result"])


def instant(prometheus_url: str, target: Target, query: str, time_range: TimeRange) -> Answer:
    """The target's query as an instant query at the range's end (what a stat of the panel shows now)."""
    return run(prometheus_url, Target(target.panel, target.ref, target.expr, True), query, time_range)


_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")


def variable_values(prometheus_url: str, variable: Mapping[str, Any], time_range: TimeRange) -> list[str]:
    """A query variable's choices, by the endpoint Grafana uses for `label_values(metric, label)`."""
    query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
    match = _LABEL_VALUES.match(query.strip())
    if match is None:
        raise ValueError(f"variable {variable['name']!r}: not a label_values() query: {query}")
    params: dict[str, Any] = {"start": time_range.start, "end": time_range.end}
    if match["selector"]:
        params["match[]"] = match["selector"]
        response = httpx.get(f"{prometheus_url}/api/v1/series", params=params, timeout=10)
        response.raise_for_status()
        return sorted({s[match["label"]] for s in response.json()["data"] if match["label"] in s})
    response = httpx.get(f"{prometheus_url}/api/v1/label/{match['label']}/values", params=params, timeout=10)
    response.raise_for_status()
    return sorted(response.json()["data"])
