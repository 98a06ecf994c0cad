"""Sending one request to a destination, and saying why it failed without saying where.

A destination's URL may itself be the secret (a Slack incoming webhook's is), so errors name the
destination and what went wrong — a status, a timeout, a refused connection — and never the URL; that is
what `last_error` keeps and the log shows.
"""

from __future__ import annotations

import requests

from orchestrator.errors import OrchestratorError

DEFAULT_TIMEOUT_SECONDS = 10.0
_BODY_SHOWN = 200  # of an error answer's body, in last_error


class DeliveryError(OrchestratorError):
    """One attempt failed; the delivery is tried again later (or recorded failed after the last try)."""


def describe_failure(exc: requests.RequestException, *, timeout: float) -> str:
    """What went wrong, in words, without the URL (requests puts it in its messages)."""
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS failed (the server's certificate is not trusted, or the handshake broke)"
    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        for cause in (
            "Connection refused",
            "Name or service not known",
            "No route to host",
            "Temporary failure in name resolution",
            "Connection reset",
        ):
            if cause in text:
                return f"unreachable ({cause.lower()})"
        return "unreachable (the connection failed)"
    return f"the request failed ({type(exc).__name__})"


def post(
    session: requests.Session,
    url: str,
    body: bytes,
    *,
    destination: str,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> None:
    """POST `body` as JSON; DeliveryError unless the answer is 2xx."""
    try:
        response = session.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise DeliveryError(f"{destination}: {describe_failure(exc, timeout=timeout)}") from None
    if not 200 <= response.status_code < 300:
        shown = response.text[:_BODY_SHOWN].strip()
        raise DeliveryError(f"{destination}: HTTP {response.status_code}" + (f": {shown}" if shown else ""))
