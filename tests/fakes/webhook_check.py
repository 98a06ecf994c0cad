"""A receiver's side of Flux's generic-hmac check, written independently of the orchestrator's signer."""

from __future__ import annotations

import hashlib
import hmac


def verify_signature(body: bytes, header: str, secret: str) -> bool:
    algorithm, _, digest = header.partition("=")
    if algorithm != "sha256":
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, digest)
