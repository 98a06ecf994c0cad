"""A generic webhook: the phase change as JSON, signed as Flux's generic-hmac receiver expects.

The signature is `X-Signature: sha256=<hex>`, the HMAC SHA-256 of the exact bytes sent, keyed with the
secret from the destination's `secretEnv` (`outbound/signing.py`); the receiver recomputes it over the
raw body.
"""

from __future__ import annotations

import json

from orchestrator.notify.facts import Facts


def webhook_body(facts: Facts) -> bytes:
    return json.dumps(facts.to_json(), sort_keys=True, separators=(",", ":")).encode()
