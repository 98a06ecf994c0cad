"""Azure for tests: a fake Microsoft Entra ID (token endpoint) and the one Resource Manager call AKS needs.

Point azure-identity at it with AZURE_AUTHORITY_HOST=<fake.url> and AZURE_TENANT_ID / AZURE_CLIENT_ID /
AZURE_CLIENT_SECRET for an app registered with `add_app`; point ContainerServiceClient at it with
`base_url=<fake.url>`. Resource Manager only accepts tokens the fake issued for its own audience
(`<fake.url>/.default`), so a wrong secret or a token for another audience is refused as Azure would.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
import uuid
from dataclasses import dataclass

import trustme

from tests.fakes.https import FakeHTTPSServer, Request, Response

AKS_SERVER_APP_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
_ARM_CREDENTIALS_PATH = (
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.ContainerService/managedClusters/(?P<name>[^/]+)/listClusterUserCredential"
)


@dataclass(frozen=True)
class IssuedToken:
    client_id: str
    scope: str
    expires_at: float


class FakeAzure(FakeHTTPSServer):
    def __init__(self, *, ca: trustme.CA | None = None, tenant_id: str | None = None) -> None:
        super().__init__(ca=ca)
        self.tenant_id = tenant_id or str(uuid.uuid4())
        self.token_lifetime = 3600
        self._apps: dict[str, str] = {}
        self._clusters: dict[tuple[str, str, str], bytes] = {}
        self.issued: dict[str, IssuedToken] = {}
        self.route("GET", r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration")(
            self._openid_configuration
        )
        self.route("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token")(self._token)
        self.route("POST", _ARM_CREDENTIALS_PATH)(self._list_cluster_user_credential)

    # -- set-up ---------------------------------------------------------------------------------------

    def add_app(self, client_id: str | None = None, secret: str | None = None) -> tuple[str, str]:
        """Register a service principal; returns (client id, secret)."""
        client_id = client_id or str(uuid.uuid4())
        secret = secret or secrets.token_urlsafe(24)
        self._apps[client_id] = secret
        return client_id, secret

    def add_managed_cluster(
        self, subscription: str, resource_group: str, name: str, kubeconfig: bytes
    ) -> None:
        """What `listClusterUserCredential` returns for this cluster (the clusterUser kubeconfig, as YAML)."""
        self._clusters[(subscription.lower(), resource_group.lower(), name.lower())] = kubeconfig

    def token_is_valid(self, token: str, scope: str) -> bool:
        issued = self.issued.get(token)
        return issued is not None and issued.scope == scope and time.time() < issued.expires_at

    @property
    def arm_scope(self) -> str:
        return f"{self.url}/.default"

    # -- Entra ID -------------------------------------------------------------------------------------

    def _openid_configuration(self, request: Request, match: re.Match[str]) -> Response:
        base = f"{self.url}/{match['tenant']}"
        return Response.json(
            {
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "issuer": f"{base}/v2.0",
                "tenant_region_scope": "EU",
            }
        )

    def _token(self, request: Request, match: re.Match[str]) -> Response:
        form = request.form()
        if match["tenant"] != self.tenant_id:
            return _aad_error(400, "invalid_request", f"AADSTS90002: Tenant '{match['tenant']}' not found.")
        if form.get("grant_type") != "client_credentials":
            return _aad_error(400, "unsupported_grant_type", "AADSTS70003: only client_credentials here")
        client_id = form.get("client_id", "")
        if client_id not in self._apps:
            return _aad_error(
                400, "unauthorized_client", f"AADSTS700016: Application '{client_id}' not found."
            )
        if not secrets.compare_digest(self._apps[client_id], form.get("client_secret", "")):
            return _aad_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        scope = form.get("scope", "")
        token = secrets.token_urlsafe(32)
        self.issued[token] = IssuedToken(client_id, scope, time.time() + self.token_lifetime)
        return Response.json(
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": token,
            }
        )

    # -- Resource Manager -----------------------------------------------------------------------------

    def _list_cluster_user_credential(self, request: Request, match: re.Match[str]) -> Response:
        token = request.bearer_token()
        if token is None or not self.token_is_valid(token, self.arm_scope):
            return _arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        if not request.param("api-version"):
            return _arm_error(
                400, "MissingApiVersionParameter", "The api-version query parameter is required."
            )
        key = (match["sub"].lower(), match["rg"].lower(), match["name"].lower())
        kubeconfig = self._clusters.get(key)
        if kubeconfig is None:
            return _arm_error(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.ContainerService/managedClusters/{match['name']}' under resource "
                f"group '{match['rg']}' was not found.",
            )
        value = base64.b64encode(kubeconfig).decode("ascii")
        return Response.json({"kubeconfigs": [{"name": "clusterUser", "value": value}]})


def _aad_error(status: int, error: str, description: str) -> Response:
    return Response.json({"error": error, "error_description": description, "error_codes": []}, status=status)


def _arm_error(status: int, code: str, message: str) -> Response:
    return Response.json({"error": {"code": code, "message": message}}, status=status)
