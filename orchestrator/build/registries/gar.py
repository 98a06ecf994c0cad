"""Google Artifact Registry (and GCR): an OAuth access token from google-auth as user `oauth2accesstoken`.

Application Default Credentials are used (GOOGLE_APPLICATION_CREDENTIALS, workload identity, the metadata
server, gcloud's user credentials), as `gcloud auth configure-docker` would.
"""

from __future__ import annotations

import google.auth
import google.auth.exceptions
import google.auth.transport.requests

from orchestrator.build.errors import RegistryError
from orchestrator.build.registries.base import Registry, RegistryCredentials
from orchestrator.build.registries.generic import GenericRegistry

ACCESS_TOKEN_USER = "oauth2accesstoken"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


class GarRegistry(Registry):
    kind = "gar"

    def credentials(self) -> RegistryCredentials:
        config = self.target.config
        if config.username_env or config.password_env:
            return GenericRegistry(self.target).credentials()
        try:
            credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
            credentials.refresh(google.auth.transport.requests.Request())
        except google.auth.exceptions.GoogleAuthError as exc:
            raise RegistryError(self.target.describe(), f"no Google access token: {exc}") from exc
        token = getattr(credentials, "token", None)
        if not token:
            raise RegistryError(self.target.describe(), "google-auth returned no access token")
        return RegistryCredentials(username=ACCESS_TOKEN_USER, password=str(token))
