"""Google Cloud for tests: an OAuth2 token endpoint for service accounts, and GKE's `get_cluster`.

`service_account_info()` makes a service-account key file whose `token_uri` is this fake; put it in
GOOGLE_APPLICATION_CREDENTIALS and google-auth signs a JWT with the key, which the fake verifies with the
public half before issuing an access token. The GKE API accepts those access tokens, or a self-signed JWT
of a registered service account (as Google does), and nothing else.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import google.auth.exceptions
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from tests.fakes.https import FakeHTTPSServer, Request, Response

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True)
class ServiceAccount:
    email: str
    key_id: str
    public_pem: bytes


@dataclass(frozen=True)
class IssuedToken:
    email: str
    scopes: tuple[str, ...]
    expires_at: float


@dataclass(frozen=True)
class GkeCluster:
    endpoint: str  # what GKE returns: an IP address (here 127.0.0.1:PORT)
    ca_pem: bytes
    status: str = "RUNNING"


class FakeGoogleCloud(FakeHTTPSServer):
    def __init__(self, *, ca: trustme.CA | None = None) -> None:
        super().__init__(ca=ca)
        self.token_lifetime = 3600
        self._accounts: dict[str, ServiceAccount] = {}
        self._clusters: dict[tuple[str, str, str], GkeCluster] = {}
        self.issued: dict[str, IssuedToken] = {}
        self.route("POST", r"/token")(self._token)
        self.route(
            "GET", r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/clusters/(?P<name>[^/]+)"
        )(self._get_cluster)

    # -- set-up ---------------------------------------------------------------------------------------

    def service_account_info(
        self, email: str = "deployer@demo-project.iam.gserviceaccount.com"
    ) -> dict[str, Any]:
        """A new service account key, as the JSON file `gcloud iam service-accounts keys create` writes."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = uuid.uuid4().hex
        private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._accounts[email] = ServiceAccount(email, key_id, public_pem)
        return {
            "type": "service_account",
            "project_id": email.split("@")[1].split(".")[0],
            "private_key_id": key_id,
            "private_key": private_pem.decode("ascii"),
            "client_email": email,
            "client_id": str(uuid.uuid4().int)[:21],
            "token_uri": f"{self.url}/token",
        }

    def add_cluster(self, project: str, location: str, name: str, *, endpoint: str, ca_pem: bytes) -> None:
        self._clusters[(project, location, name)] = GkeCluster(endpoint, ca_pem)

    def access_token_is_valid(self, token: str) -> bool:
        issued = self.issued.get(token)
        return (
            issued is not None and CLOUD_PLATFORM_SCOPE in issued.scopes and time.time() < issued.expires_at
        )

    # -- OAuth2 ---------------------------------------------------------------------------------------

    def _token(self, request: Request, match: re.Match[str]) -> Response:
        form = request.form()
        if form.get("grant_type") != _JWT_BEARER:
            return _oauth_error("unsupported_grant_type", f"grant_type {form.get('grant_type')!r}")
        try:
            # google-auth addresses the assertion to Google's token URI, whatever token_uri it posts to.
            claims = self._verified_claims(form.get("assertion", ""), audience=GOOGLE_TOKEN_URI)
        except ValueError as exc:
            return _oauth_error("invalid_grant", f"Invalid JWT Signature. ({exc})")
        token = "ya29." + secrets.token_urlsafe(32)
        scopes = tuple(str(claims.get("scope", "")).split())
        self.issued[token] = IssuedToken(str(claims["iss"]), scopes, time.time() + self.token_lifetime)
        return Response.json(
            {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        )

    def _verified_claims(self, assertion: str, *, audience: str | None) -> dict[str, Any]:
        try:
            unverified = jwt.decode(assertion, verify=False)
        except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            raise ValueError(f"not a JWT: {exc}") from exc
        account = self._accounts.get(str(unverified.get("iss")))
        if account is None:
            raise ValueError(f"unknown service account {unverified.get('iss')!r}")
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion, certs={account.key_id: account.public_pem.decode("ascii")}, audience=audience
            )
        except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            raise ValueError(str(exc)) from exc
        return claims

    def _bearer_is_valid(self, token: str | None) -> bool:
        if token is None:
            return False
        if self.access_token_is_valid(token):
            return True
        # google-api-core may send a self-signed JWT (scope claim, no audience) instead of an access token.
        try:
            claims = self._verified_claims(token, audience=None)
        except ValueError:
            return False
        return CLOUD_PLATFORM_SCOPE in str(claims.get("scope", "")).split()

    # -- GKE ------------------------------------------------------------------------------------------

    def _get_cluster(self, request: Request, match: re.Match[str]) -> Response:
        if not self._bearer_is_valid(request.bearer_token()):
            return _google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        path = f"projects/{match['project']}/locations/{match['location']}/clusters/{match['name']}"
        cluster = self._clusters.get((match["project"], match["location"], match["name"]))
        if cluster is None:
            return _google_error(404, "NOT_FOUND", f"Not found: {path}.")
        return Response.json(
            {
                "name": match["name"],
                "location": match["location"],
                "selfLink": f"{self.url}/v1/{path}",
                "endpoint": cluster.endpoint,
                "masterAuth": {"clusterCaCertificate": base64.b64encode(cluster.ca_pem).decode("ascii")},
                "status": cluster.status,
                "currentMasterVersion": "1.31.1-gke.1000",
            }
        )


def _oauth_error(error: str, description: str) -> Response:
    return Response.json({"error": error, "error_description": description}, status=400)


def _google_error(status: int, code: str, message: str) -> Response:
    return Response.json({"error": {"code": status, "message": message, "status": code}}, status=status)
