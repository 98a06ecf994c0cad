"""A small client for Prometheus' HTTP API (`/api/v1/query`, `/api/v1/query_range`) over httpx.

Shared by the prometheus provider (instant queries) and the judge (range queries). Every failure is a
PrometheusError whose message says what went wrong in words: unreachable, HTTP status, or Prometheus' own
error text for a bad query.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx


class PrometheusError(Exception):
    """Prometheus could not answer: unreachable, an HTTP error, or a response we cannot use."""


class PrometheusQueryError(PrometheusError):
    """Prometheus refused the query itself (Prometheus' errorType bad_data: a syntax or type error)."""


@dataclass(frozen=True)
class InstantResult:
    """An instant query's answer: a scalar (a float) or a vector (one float per series)."""

    result_type: str
    value: float | list[float]
    labels: list[dict[str, str]]


@dataclass(frozen=True)
class RangeSeries:
    labels: dict[str, str]
    samples: list[tuple[float, float]]

    @property
    def values(self) -> list[float]:
        return [v for _, v in self.samples]


class PrometheusAPI:
    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise PrometheusError(f"Prometheus address {base_url!r} must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def query(self, promql: str, at: datetime | None = None) -> InstantResult:
        params = {"query": promql}
        if at is not None:
            params["time"] = _timestamp(at)
        data = self._post("/api/v1/query", params)
        kind = data.get("resultType")
        result = data.get("result")
        if kind == "scalar" and isinstance(result, list) and len(result) == 2:
            return InstantResult("scalar", _float(result[1]), [])
        if kind == "vector" and isinstance(result, list):
            return InstantResult(
                "vector",
                [_float(sample["value"][1]) for sample in result],
                [dict(sample.get("metric", {})) for sample in result],
            )
        if kind == "matrix":
            raise PrometheusError(
                "the query returned a range vector (matrix); use an instant query, e.g. wrap it in rate()"
            )
        raise PrometheusError(f"unsupported result type {kind!r} from Prometheus")

    def query_range(self, promql: str, start: datetime, end: datetime, step: float) -> list[RangeSeries]:
        data = self._post(
            "/api/v1/query_range",
            {"query": promql, "start": _timestamp(start), "end": _timestamp(end), "step": f"{step:g}"},
        )
        if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
            raise PrometheusError(f"unexpected range result type {data.get('resultType')!r}")
        return [
            RangeSeries(
                labels=dict(series.get("metric", {})),
                samples=[(float(t), _float(v)) for t, v in series.get("values", [])],
            )
            for series in data["result"]
        ]

    def syntax_error(self, promql: str) -> str | None:
        """Prometheus' complaint about `promql`, or None when it parses (evaluated at time 0: no data)."""
        try:
            self._post("/api/v1/query", {"query": promql, "time": "0"})
        except PrometheusQueryError as exc:
            return str(exc)
        return None

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/-/ready", timeout=self.timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def _post(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        url = self.base_url + path
        try:
            response = httpx.post(url, data=form, timeout=self.timeout)
        except httpx.TimeoutException:
            raise PrometheusError(
                f"Prometheus at {self.base_url} did not answer within {self.timeout:g}s"
            ) from None
        except httpx.HTTPError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.base_url}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "error":
            message = f"Prometheus refused the query ({body.get('errorType', 'error')}): {body.get('error')}"
            if body.get("errorType") == "bad_data":
                raise PrometheusQueryError(message)
            raise PrometheusError(message)
        if (
            response.status_code != 200
            or not isinstance(body, dict)
            or not isinstance(body.get("data"), dict)
        ):
            raise PrometheusError(
                f"Prometheus at {self.base_url} answered HTTP {response.status_code} to {path}: "
                f"{response.text[:200]!r}"
            )
        data: dict[str, Any] = body["data"]
        return data


def _timestamp(at: datetime) -> str:
    return f"{at.timestamp():.3f}"


def _float(text: Any) -> float:
    # Prometheus sends sample values as strings: "0.5", "NaN", "+Inf", "-Inf".
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan
