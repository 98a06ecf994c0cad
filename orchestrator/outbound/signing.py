"""The signature a receiver checks: `X-Signature: sha256=<hex>`, the HMAC SHA-256 of the exact bytes sent,
keyed with a shared secret (Flux's generic-hmac receiver expects this), recomputed over the raw body."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Signature"


def signature(body: bytes, secret: str) -> str:
    """The header's value: `sha256=` and the hex HMAC SHA-256 of `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str, secret: str) -> bool:
    """Whether `header` signs `body` with `secret` (constant time)."""
    return hmac.compare_digest(signature(body, secret), header)
