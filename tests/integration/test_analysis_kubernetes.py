"""The kubernetes provider, driven through the real kubernetes client against a local API server.

The server below answers the two requests the provider makes (read a Deployment, list pods by label
selector) with objects the test sets, over real HTTP; the client library is used unmodified.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes.client import ApiClient, Configuration

from orchestrator.analysis import AnalysisContext, AnalysisPhase, run_analysis
from orchestrator.analysis.kubernetes import KubernetesMetricProvider
from orchestrator.config.pipeline import Metric
from tests.unit.test_analysis_run import FakeClock

NAMESPACE, CANARY = "shop", "api-canary"


class KubeApiServer:
    """Just enough of the Kubernetes API: deployments by name, pods by equality label selector."""

    def __init__(self) -> None:
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: list[dict[str, Any]] = []
        self.requests: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.requests.append(self.path)
                parts = urlsplit(self.path)
                segments = parts.path.strip("/").split("/")
                if (
                    segments[:3] == ["apis", "apps", "v1"]
                    and len(segments) == 7
                    and segments[5] == "deployments"
                ):
                    found = api.deployments.get((segments[4], segments[6]))
                    if found is None:
                        return self._json(404, not_found("deployments.apps", segments[6]))
                    return self._json(200, found)
                if segments[:2] == ["api", "v1"] and len(segments) == 5 and segments[4] == "pods":
                    selector = parse_qs(parts.query).get("labelSelector", [""])[0]
                    wanted = dict(term.split("=", 1) for term in selector.split(",") if term)
                    items = [
                        p
                        for p in api.pods
                        if p["metadata"]["namespace"] == segments[3]
                        and all(p["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
                    ]
                    return self._json(
                        200, {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}
                    )
                return self._json(404, not_found("resource", parts.path))

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def not_found(kind: str, name: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": f'{kind} "{name}" not found',
        "reason": "NotFound",
        "code": 404,
    }


def deployment(
    *, replicas: int = 3, ready: int = 3, updated: int = 3, conditions: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": CANARY, "namespace": NAMESPACE, "generation": 2},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "api", "version": "v2"}},
            "template": {"metadata": {"labels": {"app": "api", "version": "v2"}}, "spec": {"containers": []}},
        },
        "status": {
            "observedGeneration": 2,
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "conditions": conditions or [],
        },
    }


def pod(name: str, restarts: int, version: str = "v2") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": f"uid-{name}",
            "labels": {"app": "api", "version": version},
        },
        "spec": {"containers": [{"name": "api", "image": "api:v2"}]},
        "status": {
            "containerStatuses": [
                {
                    "name": "api",
                    "restartCount": restarts,
                    "ready": True,
                    "image": "api:v2",
                    "imageID": "",
                    "containerID": "",
                }
            ]
        },
    }


@pytest.fixture
def kube() -> Iterator[KubeApiServer]:
    server = KubeApiServer()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    server.thread.join(timeout=5)


def context_for(url: str) -> AnalysisContext:
    configuration = Configuration(host=url)
    configuration.retries = 0  # an unreachable API is an Error at once, not after urllib3's retries
    return AnalysisContext(
        service="api",
        namespace=NAMESPACE,
        cluster="aws",
        canary_version="v2",
        canary_workload=CANARY,
        api_client=ApiClient(configuration),
        http_timeout=5.0,
        clock=FakeClock(),
    )


def check(name: str, **provider: Any) -> Metric:
    return Metric.model_validate({"name": name, "provider": {"kubernetes": provider}})


def test_ready_when_every_desired_replica_is_ready(kube: KubeApiServer) -> None:
    kube.deployments[(NAMESPACE, CANARY)] = deployment(replicas=3, ready=3)
    measurement = KubernetesMetricProvider().measure(check("ready", check="ready"), context_for(kube.url))
    assert measurement.phase is AnalysisPhase.SUCCESSFUL
    assert measurement.message == "3/3 replicas ready"
    assert measurement.source == "kubernetes"
    assert measurement.query == f"ready of deployment {NAMESPACE}/{CANARY} in cluster aws"
    assert kube.requests == [f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{CANARY}"]


def test_not_ready_fails_and_failure_limit_gives_it_time(kube: KubeApiServer) -> None:
    kube.deployments[(NAMESPACE, CANARY)] = deployment(replicas=3, ready=1)
    measurement = KubernetesMetricProvider().measure(check("ready", check="ready"), context_for(kube.url))
    assert measurement.phase is AnalysisPhase.FAILED
    assert measurement.message == "1/3 replicas ready (3 updated)"


def test_progress_deadline_exceeded_fails(kube: KubeApiServer) -> None:
    stuck = {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": 'ReplicaSet "api-canary-7d9" has timed out progressing.',
    }
    kube.deployments[(NAMESPACE, CANARY)] = deployment(ready=0, conditions=[stuck])
    measurement = KubernetesMetricProvider().measure(
        check("progress", check="progress"), context_for(kube.url)
    )
    assert measurement.phase is AnalysisPhase.FAILED
    assert (
        "progress deadline exceeded" in measurement.message and "timed out progressing" in measurement.message
    )

    healthy = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": ""}
    kube.deployments[(NAMESPACE, CANARY)] = deployment(conditions=[healthy])
    again = KubernetesMetricProvider().measure(check("progress", check="progress"), context_for(kube.url))
    assert again.phase is AnalysisPhase.SUCCESSFUL


def test_restarts_count_from_the_first_measurement_and_fail_past_the_maximum(kube: KubeApiServer) -> None:
    kube.deployments[(NAMESPACE, CANARY)] = deployment()
    kube.pods = [pod("api-canary-a", 2), pod("api-canary-b", 0), pod("api-stable-x", 9, version="v1")]
    provider = KubernetesMetricProvider()
    metric = check("restarts", check="restarts", maxRestarts=1)
    context = context_for(kube.url)

    first = provider.measure(metric, context)
    assert first.phase is AnalysisPhase.SUCCESSFUL and first.value == 0.0  # the baseline
    assert kube.requests[-1].endswith("/pods?labelSelector=app%3Dapi%2Cversion%3Dv2")

    kube.pods = [pod("api-canary-a", 3), pod("api-canary-b", 0), pod("api-stable-x", 20, version="v1")]
    assert provider.measure(metric, context).phase is AnalysisPhase.SUCCESSFUL  # +1 <= 1

    kube.pods = [
        pod("api-canary-a", 3),
        pod("api-canary-b", 1),
        pod("api-canary-c", 1),
    ]  # a new pod counts fully
    failed = provider.measure(metric, context)
    assert failed.phase is AnalysisPhase.FAILED
    assert failed.value == 3.0
    assert failed.message.startswith("3 restarts > maxRestarts 1: ")
    assert "api-canary-c/api +1" in failed.message


def test_a_missing_deployment_or_unreachable_api_is_an_error(kube: KubeApiServer) -> None:
    missing = KubernetesMetricProvider().measure(check("ready", check="ready"), context_for(kube.url))
    assert missing.phase is AnalysisPhase.ERROR
    assert "cannot read deployment shop/api-canary: HTTP 404" in missing.message

    metric = check("ready", check="ready").model_copy(update={"consecutive_error_limit": 0})
    outcome = run_analysis([metric], context_for("http://127.0.0.1:1"))
    assert outcome.phase is AnalysisPhase.ERROR
    assert "cannot read deployment" in outcome.measurements[0].message


def test_without_an_api_client_the_measurement_is_an_error() -> None:
    context = AnalysisContext(service="api", namespace=NAMESPACE, clock=FakeClock())
    measurement = KubernetesMetricProvider().measure(check("ready"), context)
    assert measurement.phase is AnalysisPhase.ERROR
    assert measurement.message == "no Kubernetes API client for this cluster"
