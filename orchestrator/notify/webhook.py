"""A generic webhook: the phase change as JSON, signed as Flux's generic-hmac receiver expects.

The signature is `X-Signature: sha256=<hex>`, the HMAC SHA-256 of the exact bytes sent, keyed with the
secret from the destination's `secretEnv`; the receiver recomputes it over the raw body.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from orchestrator.notify.facts import Facts

SIGNATURE_HEADER = "X-Signature"


def webhook_body(facts: Facts) -> bytes:
    return json.dumps(facts.to_json(), sort_keys=True, separators=(",", ":")).encode()


def signature(body: bytes, secret: str) -> str:
    """The header's value: `sha256=` and the hex HMAC SHA-256 of `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str, secret: str) -> bool:
    """Whether `header` signs `body` with `secret` (constant time)."""
    return hmac.compare_digest(signature(body, secret), header)
