"""Provider name → implementation, and which one measures a given metric in a given context."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.analysis.base import AnalysisContext, MetricProvider
from orchestrator.analysis.direct import MetricsScrapeProvider
from orchestrator.analysis.judge import JudgeMetricProvider
from orchestrator.analysis.kubernetes import KubernetesMetricProvider
from orchestrator.analysis.prometheus import PrometheusMetricProvider, prometheus_address
from orchestrator.analysis.webhook import WebhookMetricProvider
from orchestrator.config.pipeline import Metric

PROVIDERS: dict[str, Callable[[], MetricProvider]] = {
    "prometheus": PrometheusMetricProvider,
    "direct": MetricsScrapeProvider,
    "kubernetes": KubernetesMetricProvider,
    "webhook": WebhookMetricProvider,
    "judge": JudgeMetricProvider,
}


def provider_name(metric: Metric, context: AnalysisContext) -> str:
    """The provider that measures `metric`: its configured kind, except that a prometheus metric with a
    direct equivalent is measured from /metrics scrapes when there is no Prometheus address at all."""
    kind = metric.provider
    if kind.prometheus is not None:
        if (
            prometheus_address(metric, context) is None
            and kind.prometheus.direct is not None
            and context.metrics_urls
        ):
            return "direct"
        return "prometheus"
    if kind.kubernetes is not None:
        return "kubernetes"
    if kind.webhook is not None:
        return "webhook"
    return "judge"


def make_provider(name: str) -> MetricProvider:
    """A fresh provider instance (providers may keep state for the length of one analysis run)."""
    try:
        return PROVIDERS[name]()
    except KeyError:
        raise ValueError(
            f"unknown analysis provider {name!r}; known: {', '.join(sorted(PROVIDERS))}"
        ) from None
