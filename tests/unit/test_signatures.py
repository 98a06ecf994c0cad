"""Webhook signatures (`server/signatures.py`) agree with the standard library's HMAC, byte for byte."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.server.signatures import sign, verify


@given(secret=st.binary(min_size=1, max_size=80), body=st.binary(max_size=4096))
def test_sign_is_githubs_hmac_sha256(secret: bytes, body: bytes) -> None:
    assert sign(secret, body) == "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    assert verify(secret, body, sign(secret, body))


@given(secret=st.binary(min_size=1, max_size=80), body=st.binary(min_size=1, max_size=512))
def test_a_signature_of_other_bytes_or_another_secret_is_refused(secret: bytes, body: bytes) -> None:
    assert not verify(secret, body + b"x", sign(secret, body))
    assert not verify(secret + b"x", body, sign(secret, body))
    assert not verify(secret, body, sign(secret, body).removeprefix("sha256="))
    assert not verify(secret, body, None)
