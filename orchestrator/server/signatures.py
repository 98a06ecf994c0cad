"""HMAC SHA-256 signatures of webhook bodies (GitHub's `X-Hub-Signature-256: sha256=<hex>`)."""

from __future__ import annotations

import hmac

PREFIX = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    # `hmac.digest` is the one-shot C path (no HMAC object): it is on every delivery's path.
    return PREFIX + hmac.digest(secret, body, "sha256").hex()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether `header` is the signature of exactly these bytes; compared in constant time."""
    if not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())
