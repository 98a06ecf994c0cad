"""Certificate authorities as cloud APIs return them: base64 of PEM, checked before anything trusts them."""

from __future__ import annotations

import base64
import binascii

from cryptography import x509

from orchestrator.clusters.errors import ClusterConnectionError


def certificate_authority_pem(data: str, *, cluster: str, target: str, source: str) -> bytes:
    """The PEM bytes of a base64-encoded CA bundle, or ClusterConnectionError saying what is wrong with it."""
    try:
        pem = base64.b64decode(data, validate=False)
        x509.load_pem_x509_certificates(pem)
    except (binascii.Error, ValueError) as exc:
        raise ClusterConnectionError(
            cluster,
            f"{source} returned a cluster certificate authority that is not a PEM certificate",
            target=target,
        ) from exc
    return pem
