"""A small typed client over the kubernetes ApiClient: JSON in, JSON out, retries where retrying is safe.

We speak the REST API directly (paths from `resources.py`) rather than through the generated per-kind
classes: one code path serves core kinds and Istio's custom resources alike, and server-side apply is just a
PATCH. The ApiClient supplies everything about a request — URL, auth headers (its Configuration renews
cloud tokens) and connection settings — and `transport.py` sends it: over the standard library's
http.client, skipping the generated `call_api`/`rest.py` layer and urllib3, which cost more CPU than the
request itself (a canary step is one request per cluster).

Retries (tenacity) cover throttling (429), server errors (5xx) and dropped connections — never a 4xx,
which means the request itself is wrong. Every write we send is idempotent (apply, merge patch with a
resourceVersion guard, delete tolerating 404), so a retry after a lost response is safe.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass, field
from typing import Any

import kubernetes.client
import urllib3
import urllib3.exceptions
from tenacity import (
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)
from tenacity import Retrying as _Retrying

from orchestrator.errors import OrchestratorError
from orchestrator.kube.transport import Transport, transport_for
from orchestrator.logs import get_logger

log = get_logger(__name__)

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON = "application/json"


class KubeApiError(OrchestratorError):
    """The API server answered with an error status (after retries, when retrying made sense)."""

    def __init__(self, cluster: str, status: int, reason: str, message: str, details: Any = None) -> None:
        super().__init__(f"cluster {cluster}: {reason or status}: {message}")
        self.cluster = cluster
        self.status = status
        self.reason = reason
        self.details = details


class ClusterUnreachableError(OrchestratorError):
    def __init__(self, cluster: str, cause: str) -> None:
        super().__init__(f"cluster {cluster} is unreachable: {cause}")
        self.cluster = cluster


# What a transport raises when the server could not be reached or the connection broke.
TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, KubeApiError):
        return exc.status == 429 or exc.status >= 500
    if isinstance(exc, ssl.SSLCertVerificationError):
        return False  # the server is not who it should be: asking again will not change that
    return isinstance(exc, TRANSPORT_ERRORS)


@dataclass
class RetryPolicy:
    attempts: int = 10
    max_seconds: float = 30.0
    initial_wait: float = 0.05
    max_wait: float = 1.0


@dataclass
class KubeClient:
    """One cluster's API, addressed by path; `cluster` names it in every error."""

    api: kubernetes.client.ApiClient
    cluster: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: tuple[float, float] = (10.0, 60.0)
    _transport: Transport = field(init=False, repr=False)
    _retrying: _Retrying = field(init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            self._transport = transport_for(self.api, self.timeout)
        except (OSError, ValueError) as exc:  # unreadable CA or client certificate files, bad PEM data
            raise ClusterUnreachableError(self.cluster, f"cannot set up TLS: {exc}") from exc
        # One Retrying for the client's life: tenacity keeps each call's attempts and start in thread-local
        # state, so the rollout's threads can share it.
        self._retrying = _Retrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self.retry.attempts) | stop_after_delay(self.retry.max_seconds),
            wait=wait_exponential_jitter(multiplier=self.retry.initial_wait, max=self.retry.max_wait),
            before_sleep=self._log_retry,
            reraise=True,
        )

    def get(self, path: str, *, query: dict[str, str] | None = None) -> dict[str, Any] | None:
        """The object at `path`, or None when it does not exist."""
        try:
            return self.request("GET", path, query=query)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, path: str, *, label_selector: str | None = None) -> list[dict[str, Any]]:
        query = {"labelSelector": label_selector} if label_selector else None
        body = self.request("GET", path, query=query) or {}
        return list(body.get("items") or [])

    def apply(
        self, path: str, obj: dict[str, Any], *, field_manager: str, force: bool = True
    ) -> dict[str, Any]:
        query = {"fieldManager": field_manager, "force": "true" if force else "false"}
        result = self.request("PATCH", path, query=query, body=obj, content_type=APPLY)
        assert result is not None
        return result

    def merge_patch(self, path: str, patch: dict[str, Any], *, field_manager: str) -> dict[str, Any]:
        result = self.request(
            "PATCH", path, query={"fieldManager": field_manager}, body=patch, content_type=MERGE
        )
        assert result is not None
        return result

    def replace(self, path: str, obj: dict[str, Any] | bytes, *, field_manager: str) -> dict[str, Any]:
        """PUT: fails with 409 when obj's resourceVersion is stale (optimistic concurrency).

        `obj` may be given already encoded as JSON (bytes), by a caller that had to encode it anyway."""
        result = self.request("PUT", path, query={"fieldManager": field_manager}, body=obj, content_type=JSON)
        assert result is not None
        return result

    def delete(self, path: str) -> bool:
        """True when something was deleted; a missing object is not an error."""
        try:
            self.request("DELETE", path, body={"propagationPolicy": "Background"}, content_type=JSON)
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> dict[str, Any] | None:
        try:
            return self._retrying(self._send, method, path, query, body, content_type)
        except TRANSPORT_ERRORS as exc:
            raise ClusterUnreachableError(self.cluster, _describe_transport_error(exc)) from None

    def _send(
        self, method: str, path: str, query: dict[str, str] | None, body: Any, content_type: str | None
    ) -> dict[str, Any] | None:
        headers = {"Accept": JSON}
        if content_type:
            headers["Content-Type"] = content_type
        _, url, headers, _, _ = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        payload = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        status, data = self._transport.send(method, url, payload, headers)
        if not 200 <= status < 300:
            raise _error(self.cluster, status, data)
        if not data:
            return None
        decoded: dict[str, Any] = json.loads(data)
        return decoded

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info("kube_retry", cluster=self.cluster, attempt=state.attempt_number, error=str(exc))


def _error(cluster: str, status: int, data: bytes | None) -> KubeApiError:
    reason, message, details = "", "", None
    try:
        body = json.loads(data or b"{}")
        reason, message, details = body.get("reason", ""), body.get("message", ""), body.get("details")
    except (ValueError, AttributeError):
        message = (data or b"").decode(errors="replace")[:200]
    if status == 401:
        reason, message = "Unauthorized", message or "the cluster refused the credentials"
    return KubeApiError(cluster, status, reason, message or f"HTTP {status}", details)


def _describe_transport_error(exc: BaseException) -> str:
    """A few words on why the server could not be reached (urllib3 wraps the cause in `reason`)."""
    reason = getattr(exc, "reason", None)
    cause = reason if isinstance(reason, BaseException) else exc
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS verification failed: certificate verify failed ({cause.verify_message})"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, TimeoutError):
        return "timed out"
    text = str(reason or exc)
    return text.split(": ", 1)[-1] if text else type(exc).__name__
