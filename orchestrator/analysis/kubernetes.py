"""The kubernetes provider: the canary Deployment's own health, read with the real kubernetes client.

Checks (`provider.kubernetes.check`):
- `ready`: every desired replica is updated and ready (`readyReplicas == spec.replicas`, the controller has
  seen the latest generation). Fewer is a Failed measurement; `failureLimit`/`initialDelay` give it time.
- `restarts`: container restarts of the workload's pods since this analysis run's first measurement
  (pods that appear later count all their restarts); more than `maxRestarts` is Failed.
- `progress`: the Deployment's Progressing condition has reason ProgressDeadlineExceeded, or a
  ReplicaFailure condition is true → Failed; otherwise Successful.
A Deployment that cannot be read (missing, forbidden, unreachable API) is an Error measurement.
"""

from __future__ import annotations

from typing import Any

import urllib3
from kubernetes.client import AppsV1Api, CoreV1Api, V1Deployment, V1LabelSelector
from kubernetes.client.exceptions import ApiException

from orchestrator.analysis.base import AnalysisContext, Measurement, start_measurement
from orchestrator.analysis.phases import AnalysisPhase
from orchestrator.config.pipeline import Metric

SOURCE = "kubernetes"
_API_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError)


def label_selector(selector: V1LabelSelector | None) -> str:
    """A Deployment's selector as the `labelSelector` query string the API understands."""
    if selector is None:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.match_labels or {}).items())]
    for expression in selector.match_expressions or []:
        values = ",".join(expression.values or [])
        match expression.operator:
            case "In":
                parts.append(f"{expression.key} in ({values})")
            case "NotIn":
                parts.append(f"{expression.key} notin ({values})")
            case "Exists":
                parts.append(expression.key)
            case "DoesNotExist":
                parts.append(f"!{expression.key}")
    return ",".join(parts)


def _api_error(exc: Exception) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}".strip()
    return f"{type(exc).__name__}: {exc}"


class KubernetesMetricProvider:
    source = SOURCE

    def __init__(self) -> None:
        # restarts per (pod uid, container) at the run's first measurement
        self._baseline: dict[tuple[str, str], int] | None = None

    def measure(self, metric: Metric, context: AnalysisContext) -> Measurement:
        config = metric.provider.kubernetes
        assert config is not None, "the kubernetes provider measures kubernetes metrics"
        name, namespace = context.canary_workload_name, context.namespace
        query = f"{config.check} of deployment {namespace}/{name} in cluster {context.cluster or '?'}"
        taking = start_measurement(metric, context, source=SOURCE, query=query)
        if context.api_client is None:
            return taking.error("no Kubernetes API client for this cluster")
        timeout = context.http_timeout
        try:
            deployment = AppsV1Api(context.api_client).read_namespaced_deployment(
                name, namespace, _request_timeout=timeout
            )
        except _API_ERRORS as exc:
            return taking.error(f"cannot read deployment {namespace}/{name}: {_api_error(exc)}")

        value: float | None
        if config.check == "ready":
            phase, message, value, details = self._ready(deployment)
        elif config.check == "progress":
            phase, message, value, details = self._progress(deployment)
        else:
            try:
                pods = CoreV1Api(context.api_client).list_namespaced_pod(
                    namespace,
                    label_selector=label_selector(deployment.spec.selector),
                    _request_timeout=timeout,
                )
            except _API_ERRORS as exc:
                return taking.error(f"cannot list pods of {namespace}/{name}: {_api_error(exc)}")
            phase, message, value, details = self._restarts(pods.items, config.max_restarts)
        return taking.done(phase, message, value=value, details=details)

    @staticmethod
    def _ready(deployment: V1Deployment) -> tuple[AnalysisPhase, str, float, dict[str, Any]]:
        spec, status, meta = deployment.spec, deployment.status, deployment.metadata
        desired = spec.replicas if spec.replicas is not None else 1
        ready = (status.ready_replicas if status else None) or 0
        updated = (status.updated_replicas if status else None) or 0
        observed = (status.observed_generation if status else None) or 0
        details = {"desired": desired, "ready": ready, "updated": updated}
        if observed < ((meta.generation if meta else None) or 0):
            return (
                AnalysisPhase.FAILED,
                "the controller has not yet seen the latest spec",
                float(ready),
                details,
            )
        if ready >= desired and updated >= desired:
            return AnalysisPhase.SUCCESSFUL, f"{ready}/{desired} replicas ready", float(ready), details
        return (
            AnalysisPhase.FAILED,
            f"{ready}/{desired} replicas ready ({updated} updated)",
            float(ready),
            details,
        )

    @staticmethod
    def _progress(deployment: V1Deployment) -> tuple[AnalysisPhase, str, None, dict[str, Any]]:
        conditions = (deployment.status.conditions if deployment.status else None) or []
        seen: dict[str, Any] = {
            str(c.type): {"status": c.status, "reason": c.reason, "message": c.message} for c in conditions
        }
        for condition in conditions:
            if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
                return (
                    AnalysisPhase.FAILED,
                    f"progress deadline exceeded: {condition.message or ''}".strip(),
                    None,
                    seen,
                )
            if condition.type == "ReplicaFailure" and condition.status == "True":
                return (
                    AnalysisPhase.FAILED,
                    f"replica failure: {condition.message or condition.reason}",
                    None,
                    seen,
                )
        return AnalysisPhase.SUCCESSFUL, "within its progress deadline", None, seen

    def _restarts(
        self, pods: list[Any], max_restarts: int
    ) -> tuple[AnalysisPhase, str, float, dict[str, Any]]:
        counts: dict[tuple[str, str], int] = {}
        names: dict[tuple[str, str], str] = {}
        for pod in pods:
            statuses = (
                [*(pod.status.init_container_statuses or []), *(pod.status.container_statuses or [])]
                if pod.status
                else []
            )
            for status in statuses:
                key = (pod.metadata.uid or pod.metadata.name, status.name)
                counts[key] = status.restart_count or 0
                names[key] = f"{pod.metadata.name}/{status.name}"
        if self._baseline is None:
            self._baseline = dict(counts)
        grown = {key: count - self._baseline.get(key, 0) for key, count in counts.items()}
        grown = {key: delta for key, delta in grown.items() if delta > 0}
        total = sum(grown.values())
        details = {"restarts": {names[key]: delta for key, delta in grown.items()}, "pods": len(pods)}
        listing = ", ".join(f"{names[key]} +{delta}" for key, delta in sorted(grown.items()))
        if total > max_restarts:
            return (
                AnalysisPhase.FAILED,
                f"{total} restarts > maxRestarts {max_restarts}: {listing}",
                float(total),
                details,
            )
        suffix = f": {listing}" if listing else ""
        return (
            AnalysisPhase.SUCCESSFUL,
            f"{total} restarts ≤ maxRestarts {max_restarts}{suffix}",
            float(total),
            details,
        )
