"""Build a kubernetes ApiClient from an endpoint, a CA and a bearer token that renews itself; prove it works.

Cloud targets hand out short-lived tokens (EKS: 15 minutes, GKE and AKS: about an hour). The kubernetes
client asks its Configuration's `refresh_api_key_hook` before every request, so a `RefreshingToken` there
keeps a long rollout authenticated without anyone re-connecting.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import kubernetes.client
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from orchestrator.clusters.errors import ClusterConnectionError
from orchestrator.logs import get_logger

log = get_logger(__name__)

# Seconds to connect, and to read the probe's answer: a cluster slower than this is reported, not waited on.
PROBE_TIMEOUT = (10.0, 20.0)

Clock = Callable[[], float]


@dataclass(frozen=True)
class BearerToken:
    value: str
    expires_at: float | None  # seconds since the epoch, by the token source's clock; None: never expires


class RefreshingToken:
    """The current bearer token of one cluster, fetched again `margin` seconds before it expires.

    Thread-safe: rollouts talk to a cluster from several threads, and only one of them fetches.
    A fetch that fails raises ClusterConnectionError naming the cluster, so a token that cannot be
    renewed in the middle of a rollout reads like any other connection failure.
    """

    def __init__(
        self,
        fetch: Callable[[], BearerToken],
        *,
        cluster: str,
        target: str,
        clock: Clock = time.time,
        margin: float = 60.0,
    ) -> None:
        self._fetch = fetch
        self._cluster = cluster
        self._target = target
        self._clock = clock
        self._margin = margin
        self._lock = threading.Lock()
        self._current: BearerToken | None = None

    def value(self) -> str:
        with self._lock:
            if self._current is None or self._is_due(self._current):
                self._current = self._fetch_or_raise()
            return self._current.value

    def _is_due(self, token: BearerToken) -> bool:
        return token.expires_at is not None and self._clock() >= token.expires_at - self._margin

    def _fetch_or_raise(self) -> BearerToken:
        try:
            token = self._fetch()
        except ClusterConnectionError:
            raise
        except Exception as exc:  # a credential SDK's own error types vary; all mean "no token"
            raise ClusterConnectionError(
                self._cluster, f"could not get a token: {exc}", target=self._target
            ) from exc
        log.debug("cluster token fetched", cluster=self._cluster, expires_at=token.expires_at)
        return token


def api_client_for(
    host: str,
    *,
    ca_pem: bytes | None,
    token: RefreshingToken,
    tls_server_name: str | None = None,
) -> kubernetes.client.ApiClient:
    """An ApiClient for `host` that trusts only `ca_pem` (the system store when None) and sends `token`."""
    configuration = kubernetes.client.Configuration()
    configuration.host = host.rstrip("/")
    if ca_pem is not None:
        # Verify against this CA only; the data stays in memory (no temporary file left behind).
        configuration.ca_cert_data = ca_pem.decode("ascii")
    if tls_server_name:
        configuration.tls_server_name = tls_server_name

    def refresh(config: kubernetes.client.Configuration) -> None:
        config.api_key["BearerToken"] = "Bearer " + token.value()

    # The generated client declares the hook's type as None; a callable is what it calls.
    configuration.refresh_api_key_hook = refresh  # type: ignore[assignment]
    refresh(configuration)
    return kubernetes.client.ApiClient(configuration)


def verify_connection(
    api_client: kubernetes.client.ApiClient, *, cluster: str, target: str, access_hint: str | None = None
) -> None:
    """Prove the client reaches the API server and is authenticated, or raise ClusterConnectionError.

    Asks for `/api`: unlike `/version` it is not public (the system:discovery role covers authenticated
    users only), so a wrong or expired credential gets 401 here rather than on the first real write.
    `access_hint` is appended to a 401 or 403: what usually grants this kind of target access.
    """
    try:
        kubernetes.client.CoreApi(api_client).get_api_versions(_request_timeout=PROBE_TIMEOUT)
    except ClusterConnectionError:
        raise
    except Exception as exc:
        cause = failure_cause(exc, host=api_client.configuration.host)
        if access_hint and isinstance(exc, ApiException) and exc.status in (401, 403):
            cause = f"{cause}; {access_hint}"
        raise ClusterConnectionError(cluster, cause, target=target) from exc


def failure_cause(exc: BaseException, *, host: str | None = None) -> str:
    """One line saying why a request to a Kubernetes API server failed, for the person at the keyboard."""
    at = f" at {host}" if host else ""
    if isinstance(exc, ApiException):
        if exc.status == 401:
            return f"the API server{at} rejected our credentials (401 Unauthorized)"
        if exc.status == 403:
            return f"the API server{at} refused access (403 Forbidden): {_status_message(exc)}"
        return f"the API server{at} answered {exc.status} {exc.reason}: {_status_message(exc)}"
    return f"cannot reach the API server{at}: {network_failure(exc)}"


def network_failure(exc: BaseException) -> str:
    """Why a connection failed, in a few words, from the socket or TLS error buried in the client's errors."""
    reason = _innermost_reason(exc)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS verification failed ({reason.verify_message or reason})"
    if isinstance(reason, ssl.SSLError):
        return f"TLS handshake failed ({reason})"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return f"unknown host ({reason.strerror})"
    if isinstance(reason, (TimeoutError, socket.timeout, urllib3.exceptions.TimeoutError)):
        return "timed out"
    return str(reason) or type(reason).__name__


def _innermost_reason(exc: BaseException) -> BaseException:
    # Client libraries wrap the socket error: urllib3 as MaxRetryError(reason=NewConnectionError(...) from
    # ConnectionRefusedError), azure-core as ServiceRequestError(inner_exception=...), requests by chaining.
    seen: set[int] = set()
    current: BaseException = exc
    while id(current) not in seen:
        seen.add(id(current))
        wrapped = getattr(current, "reason", None)
        if not isinstance(wrapped, BaseException):
            wrapped = getattr(current, "inner_exception", None)
        if not isinstance(wrapped, BaseException):
            wrapped = current.__cause__ or current.__context__
        if wrapped is None:
            break
        current = wrapped
    return current


def _status_message(exc: ApiException) -> str:
    # Kubernetes answers errors with a Status object whose `message` is the readable part.
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            message = json.loads(body).get("message")
            if isinstance(message, str) and message:
                return message
        except (ValueError, AttributeError):
            return body[:200]
    return str(exc.reason or "no details")
