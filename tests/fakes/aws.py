"""AWS for tests: moto in server mode in this process, and the check an EKS API server makes of a token.

moto answers EKS and STS like AWS, but its `describe_cluster` invents an endpoint and a certificate, and
it never checks a presigned signature. `point_eks_cluster_at` sets the cluster's endpoint and CA on moto's
backend objects (shared with this process); `EksTokenVerifier` does what aws-iam-authenticator and STS do
together: parse the token, check the signed `x-k8s-aws-id`, and recompute the SigV4 signature.
"""

from __future__ import annotations

import base64
import hmac
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import requests
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.core import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
TOKEN_LIFETIME_SECONDS = 15 * 60  # STS accepts a presigned GetCallerIdentity for 15 minutes after X-Amz-Date
_ALLOWED_PARAMS = {
    "action",
    "version",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-signedheaders",
}


class MotoServer:
    """moto's server on 127.0.0.1 (a free port) in a thread of this process; its state is reset on exit."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""

    def __enter__(self) -> MotoServer:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            requests.post(f"{self.url}/moto-api/reset", timeout=10)
        finally:
            self._server.stop()


def point_eks_cluster_at(
    name: str, *, region: str, endpoint: str, ca_pem: bytes, account_id: str = DEFAULT_ACCOUNT_ID
) -> None:
    """Make moto's `describe_cluster` answer `endpoint` and `ca_pem` (base64, as EKS does) for `name`."""
    from moto.eks.models import eks_backends

    cluster = eks_backends[account_id][region].clusters[name]
    cluster.endpoint = endpoint
    cluster.certificate_authority = {"data": base64.b64encode(ca_pem).decode("ascii")}


def moto_assumed_role_secret(access_key_id: str, account_id: str = DEFAULT_ACCOUNT_ID) -> str | None:
    """The secret key moto handed out with temporary credentials from sts:AssumeRole, if it did."""
    from moto.sts.models import sts_backends

    for role in sts_backends[account_id]["global"].assumed_roles:
        if role.access_key_id == access_key_id:
            return str(role.secret_access_key)
    return None


class InvalidEksToken(Exception):
    pass


@dataclass
class EksTokenVerifier:
    """Checks EKS bearer tokens as the cluster does: format, cluster id, age, SigV4 signature, then STS.

    `sts_url` is the STS endpoint tokens must point at (moto's URL here; sts.<region>.amazonaws.com on AWS).
    `secret_for` gives the secret key of an access key id, or None for an unknown one.
    `cluster_ids` maps the emulator's cluster name to the EKS cluster name the token must be signed for.
    """

    sts_url: str
    secret_for: Callable[[str], str | None]
    cluster_ids: dict[str, str] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    accepted: list[tuple[str, str]] = field(default_factory=list)  # (cluster id, caller ARN)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (cluster id, reason)

    def authenticator(self, sim_cluster: str, token: str) -> bool:
        """The emulator's `authenticator(cluster_name, bearer_token)` hook."""
        cluster_id = self.cluster_ids.get(sim_cluster, sim_cluster)
        try:
            arn = self.verify(cluster_id, token)
        except InvalidEksToken as exc:
            self.rejected.append((cluster_id, str(exc)))
            return False
        self.accepted.append((cluster_id, arn))
        return True

    def verify(self, cluster_id: str, token: str) -> str:
        """The caller's ARN if `token` is valid for `cluster_id`; InvalidEksToken saying why otherwise."""
        if not token.startswith(TOKEN_PREFIX):
            raise InvalidEksToken(f"token lacks the {TOKEN_PREFIX!r} prefix")
        encoded = token[len(TOKEN_PREFIX) :]
        if encoded.endswith("="):
            raise InvalidEksToken("token is padded base64 (EKS tokens are unpadded base64url)")
        try:
            url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidEksToken(f"token is not base64url: {exc}") from exc

        parts = urlsplit(url)
        expected = urlsplit(self.sts_url)
        if (parts.scheme, parts.netloc) != (expected.scheme, expected.netloc):
            raise InvalidEksToken(f"presigned URL points at {parts.scheme}://{parts.netloc}, not STS")
        if parts.path != "/":
            raise InvalidEksToken("unexpected path in presigned URL")
        params = parse_qsl(parts.query, keep_blank_values=True)
        lowered: dict[str, str] = {}
        for key, value in params:
            if key.lower() not in _ALLOWED_PARAMS:
                raise InvalidEksToken(f"query parameter {key!r} is not allowed")
            if key.lower() in lowered:
                raise InvalidEksToken(f"query parameter {key!r} repeated")
            lowered[key.lower()] = value
        if lowered.get("action") != "GetCallerIdentity":
            raise InvalidEksToken("presigned URL is not for GetCallerIdentity")
        signed_headers = lowered.get("x-amz-signedheaders", "").split(";")
        if CLUSTER_ID_HEADER not in signed_headers:
            raise InvalidEksToken(f"the {CLUSTER_ID_HEADER} header is not signed")
        expires = int(lowered.get("x-amz-expires", "-1"))
        if not 0 <= expires <= 900:
            raise InvalidEksToken(f"X-Amz-Expires {expires} outside 0..900")
        signed_at = datetime.strptime(lowered.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if self.clock() > signed_at.timestamp() + TOKEN_LIFETIME_SECONDS:
            raise InvalidEksToken(f"token signed at {signed_at.isoformat()} has expired")

        self._check_signature(url, lowered, signed_headers, cluster_id)
        return self._caller_arn(url, lowered, cluster_id)

    def _check_signature(
        self, url: str, params: dict[str, str], signed_headers: list[str], cluster_id: str
    ) -> None:
        access_key_id, date, region, service, terminator = params.get("x-amz-credential", "").split("/")
        if service != "sts" or terminator != "aws4_request" or not params["x-amz-date"].startswith(date):
            raise InvalidEksToken("malformed X-Amz-Credential")
        secret = self.secret_for(access_key_id)
        if secret is None:
            raise InvalidEksToken(f"unknown access key {access_key_id}")
        headers = {}
        for name in signed_headers:
            if name == CLUSTER_ID_HEADER:
                # The server signs with ITS cluster id: a token made for another cluster cannot match.
                headers[name] = cluster_id
            elif name != "host":
                raise InvalidEksToken(f"signed header {name!r} cannot be reproduced by the server")

        parts = urlsplit(url)
        unsigned_query = "&".join(
            p for p in parts.query.split("&") if not p.lower().startswith("x-amz-signature=")
        )
        request = AWSRequest(method="GET", url=parts._replace(query=unsigned_query).geturl(), headers=headers)
        request.context["timestamp"] = params["x-amz-date"]
        credentials = Credentials(access_key_id, secret, params.get("x-amz-security-token"))
        signer = SigV4QueryAuth(credentials, "sts", region, expires=int(params["x-amz-expires"]))
        string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
        expected = signer.signature(string_to_sign, request)
        if not hmac.compare_digest(expected, params.get("x-amz-signature", "")):
            raise InvalidEksToken("SigV4 signature does not match (wrong secret key or tampered token)")

    def _caller_arn(self, url: str, params: dict[str, str], cluster_id: str) -> str:
        # What aws-iam-authenticator does next: replay the URL to STS to learn who signed it. moto's server
        # picks the service from an Authorization header, never from presigned query parameters, so the
        # query's credential is restated as a header for its router (the signature was checked above).
        routing = (
            f"AWS4-HMAC-SHA256 Credential={params['x-amz-credential']}, "
            f"SignedHeaders={params['x-amz-signedheaders']}, Signature={params['x-amz-signature']}"
        )
        answer = requests.get(
            url, headers={CLUSTER_ID_HEADER: cluster_id, "Authorization": routing}, timeout=10
        )
        if answer.status_code != 200:
            raise InvalidEksToken(f"STS answered {answer.status_code} to the presigned URL")
        arn = next((el.text for el in ET.fromstring(answer.content).iter() if el.tag.endswith("Arn")), None)
        if not arn:
            raise InvalidEksToken("STS answer has no caller ARN")
        return arn
