"""The webhook provider: an HTTP check, like Flagger's webhooks. A 2xx answer passes.

POST sends a JSON payload shaped like Flagger's (`name`, `namespace`, `phase`, `metadata`), with the
rollout's environment, cluster and versions and the provider's `body` entries in `metadata`; GET sends
none. Placeholders (`{{service}}`, `{{args.x}}`) work in the URL, header values and string body values.

A non-2xx answer is Failed; no answer (refused, timed out) is an Error. When the metric has success or
failure conditions, a 2xx answer is judged by them too, with the JSON body (or text) as `result` — as
Argo Rollouts' web provider does.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from orchestrator.analysis.base import AnalysisContext, Measurement, assess, start_measurement
from orchestrator.analysis.phases import AnalysisPhase
from orchestrator.analysis.templating import TemplateError
from orchestrator.config.pipeline import Metric

SOURCE = "webhook"


def payload(metric: Metric, context: AnalysisContext) -> dict[str, Any]:
    """Flagger's CanaryWebhookPayload, with this orchestrator's facts in metadata."""
    config = metric.provider.webhook
    assert config is not None
    metadata: dict[str, Any] = {
        "environment": context.environment,
        "cluster": context.cluster,
        "canaryVersion": context.canary_version,
        "stableVersion": context.stable_version,
        "metric": metric.name,
    }
    for key, value in (config.body or {}).items():
        metadata[key] = context.render(value, where=f"body.{key}") if isinstance(value, str) else value
    return {
        "name": context.service,
        "namespace": context.namespace,
        "phase": context.phase,
        "metadata": metadata,
    }


class WebhookMetricProvider:
    source = SOURCE

    def measure(self, metric: Metric, context: AnalysisContext) -> Measurement:
        config = metric.provider.webhook
        assert config is not None, "the webhook provider measures webhook metrics"
        taking = start_measurement(metric, context, source=SOURCE, query=f"{config.method} {config.url}")
        try:
            url = context.render(config.url, where="url")
            headers = {k: context.render(v, where=f"headers.{k}") for k, v in config.headers.items()}
            body = payload(metric, context) if config.method == "POST" else None
        except TemplateError as exc:
            return taking.error(str(exc))
        taking.query = f"{config.method} {url}"
        try:
            response = httpx.request(config.method, url, json=body, headers=headers, timeout=config.timeout)
        except httpx.TimeoutException:
            return taking.error(f"no answer within {config.timeout:g}s")
        except httpx.HTTPError as exc:
            return taking.error(f"cannot reach {url}: {exc}")

        status = response.status_code
        excerpt = response.text[:200]
        if not 200 <= status < 300:
            return taking.done(AnalysisPhase.FAILED, f"HTTP {status}: {excerpt!r}", value=float(status))
        if not metric.success_condition and not metric.failure_condition:
            return taking.done(AnalysisPhase.SUCCESSFUL, f"HTTP {status}", value=float(status))
        try:
            result: Any = response.json()
        except (json.JSONDecodeError, ValueError):
            result = response.text
        phase, message = assess(metric, context, result)
        return taking.done(
            phase, f"HTTP {status}; {message}", value=result if isinstance(result, dict | list) else excerpt
        )
