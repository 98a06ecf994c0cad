"""The webhook provider against a real local HTTP server: 2xx passes, else Failed; no answer is an Error."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from orchestrator.analysis import AnalysisContext, AnalysisPhase
from orchestrator.analysis.webhook import WebhookMetricProvider
from orchestrator.config.pipeline import Metric
from tests.unit.test_analysis_run import FakeClock


class Hook:
    """A local HTTP endpoint that answers with a status and body the test sets, and records requests."""

    def __init__(self) -> None:
        self.status = 200
        self.body: Any = {"ok": True}
        self.requests: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                hook.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "json": json.loads(raw) if raw else None,
                    }
                )
                payload = hook.body if isinstance(hook.body, bytes) else json.dumps(hook.body).encode()
                self.send_response(hook.status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    server.thread.join(timeout=5)


def webhook_metric(url: str, **fields: Any) -> Metric:
    provider = {"url": url, **fields.pop("provider", {})}
    return Metric.model_validate({"name": "smoke", "provider": {"webhook": provider}, **fields})


CONTEXT = AnalysisContext(
    service="api",
    namespace="shop",
    environment="staging",
    cluster="aws",
    canary_version="v2",
    stable_version="v1",
    args={"token": "t0k"},
    clock=FakeClock(),
)


def test_a_2xx_answer_passes_and_the_payload_is_shaped_like_flaggers(hook: Hook) -> None:
    metric = webhook_metric(
        hook.url + "/check/{{service}}",
        provider={
            "headers": {"X-Token": "{{args.token}}"},
            "body": {"cmd": "smoke {{canary_version}}", "n": 3},
        },
    )
    measurement = WebhookMetricProvider().measure(metric, CONTEXT)
    assert measurement.phase is AnalysisPhase.SUCCESSFUL
    assert measurement.query == f"POST {hook.url}/check/api"
    request = hook.requests[0]
    assert request["path"] == "/check/api"
    assert request["headers"]["X-Token"] == "t0k"
    assert request["json"] == {
        "name": "api",
        "namespace": "shop",
        "phase": "Progressing",
        "metadata": {
            "environment": "staging",
            "cluster": "aws",
            "canaryVersion": "v2",
            "stableVersion": "v1",
            "metric": "smoke",
            "cmd": "smoke v2",
            "n": 3,
        },
    }


@pytest.mark.parametrize("status", [400, 404, 500, 503])
def test_a_non_2xx_answer_fails(hook: Hook, status: int) -> None:
    hook.status, hook.body = status, {"error": "canary is sick"}
    measurement = WebhookMetricProvider().measure(webhook_metric(hook.url), CONTEXT)
    assert measurement.phase is AnalysisPhase.FAILED
    assert measurement.message.startswith(f"HTTP {status}")
    assert "canary is sick" in measurement.message


def test_no_answer_is_an_error_not_a_failure() -> None:
    measurement = WebhookMetricProvider().measure(webhook_metric("http://127.0.0.1:1/"), CONTEXT)
    assert measurement.phase is AnalysisPhase.ERROR
    assert "cannot reach http://127.0.0.1:1/" in measurement.message


def test_get_sends_no_body(hook: Hook) -> None:
    WebhookMetricProvider().measure(webhook_metric(hook.url, provider={"method": "GET"}), CONTEXT)
    assert hook.requests[0]["method"] == "GET" and hook.requests[0]["json"] is None


def test_conditions_judge_the_json_answer_like_argos_web_provider(hook: Hook) -> None:
    metric = webhook_metric(
        hook.url, successCondition="result.errors < 5", failureCondition="result.errors > 10"
    )
    provider = WebhookMetricProvider()
    for errors, phase in (
        (2, AnalysisPhase.SUCCESSFUL),
        (7, AnalysisPhase.INCONCLUSIVE),
        (20, AnalysisPhase.FAILED),
    ):
        hook.body = {"errors": errors}
        measurement = provider.measure(metric, CONTEXT)
        assert measurement.phase is phase
        assert measurement.value == {"errors": errors}
    hook.body = b"not json"
    assert provider.measure(metric, CONTEXT).phase is AnalysisPhase.ERROR


def test_an_unknown_placeholder_is_an_error_naming_it(hook: Hook) -> None:
    measurement = WebhookMetricProvider().measure(webhook_metric(hook.url + "/{{nope}}"), CONTEXT)
    assert measurement.phase is AnalysisPhase.ERROR
    assert "unknown placeholder {{nope}}" in measurement.message
    assert hook.requests == []
