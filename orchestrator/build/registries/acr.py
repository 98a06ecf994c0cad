"""Azure Container Registry: a Microsoft Entra (AAD) token exchanged for an ACR refresh token.

This is what `az acr login` does: POST the AAD access token to `https://<registry>/oauth2/exchange`; the
refresh token that comes back is the password of the fixed user 00000000-0000-0000-0000-000000000000,
which both `docker push` and the registry's own token endpoint accept. With `usernameEnv`/`passwordEnv`
set (an admin user or a repository-scoped token) those are used instead, as for any registry.
"""

from __future__ import annotations

import os

import azure.core.exceptions
import httpx
from azure.core.credentials import TokenCredential
from azure.identity import DefaultAzureCredential

from orchestrator.build.errors import RegistryError
from orchestrator.build.registries.base import PushTarget, Registry, RegistryCredentials
from orchestrator.build.registries.generic import GenericRegistry

ACR_REFRESH_TOKEN_USER = "00000000-0000-0000-0000-000000000000"
# ACR accepts Entra tokens issued for Azure Resource Manager, as `az acr login` gets them.
AAD_SCOPE = "https://management.azure.com/.default"
EXCHANGE_TIMEOUT_S = 30.0


class AcrRegistry(Registry):
    kind = "acr"

    def __init__(self, target: PushTarget, credential: TokenCredential | None = None) -> None:
        super().__init__(target)
        self._credential = credential

    def credentials(self) -> RegistryCredentials:
        config = self.target.config
        if config.username_env or config.password_env:
            return GenericRegistry(self.target).credentials()
        aad_token = self._aad_token()
        return RegistryCredentials(username=ACR_REFRESH_TOKEN_USER, password=self._exchange(aad_token))

    def _aad_token(self) -> str:
        # Instance discovery can only fail for a private authority (AZURE_AUTHORITY_HOST); Microsoft's own
        # hosts skip it anyway.
        credential = self._credential or DefaultAzureCredential(disable_instance_discovery=True)
        try:
            return credential.get_token(AAD_SCOPE).token
        except azure.core.exceptions.ClientAuthenticationError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RegistryError(
                self.target.describe(), f"no Microsoft Entra token for ACR: {reason}"
            ) from exc

    def _exchange(self, aad_token: str) -> str:
        scheme = "http" if self.target.insecure else "https"
        url = f"{scheme}://{self.target.registry}/oauth2/exchange"
        form = {"grant_type": "access_token", "service": self.target.registry, "access_token": aad_token}
        tenant = os.environ.get("AZURE_TENANT_ID")
        if tenant:
            form["tenant"] = tenant
        try:
            response = httpx.post(url, data=form, timeout=EXCHANGE_TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise RegistryError(self.target.describe(), f"cannot reach {url}: {exc}") from exc
        if response.status_code != 200:
            raise RegistryError(
                self.target.describe(),
                f"the ACR token exchange was refused ({response.status_code}): {response.text.strip()[:300]}",
            )
        try:
            refresh_token = response.json()["refresh_token"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RegistryError(
                self.target.describe(), "the ACR token exchange returned no refresh_token"
            ) from exc
        if not isinstance(refresh_token, str) or not refresh_token:
            raise RegistryError(
                self.target.describe(), "the ACR token exchange returned an empty refresh_token"
            )
        return refresh_token
