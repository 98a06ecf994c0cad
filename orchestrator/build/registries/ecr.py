"""Amazon ECR: a 12-hour token from `ecr:GetAuthorizationToken`, and the repository made on first push.

boto3's usual credential chain and endpoint settings apply (AWS_PROFILE, AWS_ENDPOINT_URL_ECR, ...). The
token is base64 of `AWS:<password>`; `docker login` is never needed.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from orchestrator.build.errors import RegistryError
from orchestrator.build.registries.base import Registry, RegistryCredentials
from orchestrator.errors import ConfigError

# 123456789012.dkr.ecr.us-west-2.amazonaws.com (also the FIPS and China partitions)
_ECR_HOST = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$"
)

_BOTO_CONFIG = Config(connect_timeout=10, read_timeout=30, retries={"mode": "standard", "max_attempts": 3})


class EcrRegistry(Registry):
    kind = "ecr"

    def credentials(self) -> RegistryCredentials:
        kwargs: dict[str, Any] = {}
        account = self._account()
        if account:
            kwargs["registryIds"] = [account]
        try:
            answer = self._client().get_authorization_token(**kwargs)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise RegistryError(
                self.target.describe(), f"ecr:GetAuthorizationToken failed: {_cause(exc)}"
            ) from exc
        data = answer.get("authorizationData") or []
        if not data or not data[0].get("authorizationToken"):
            raise RegistryError(self.target.describe(), "ecr:GetAuthorizationToken returned no token")
        try:
            decoded = base64.b64decode(data[0]["authorizationToken"]).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise RegistryError(
                self.target.describe(), "ecr:GetAuthorizationToken returned a malformed token"
            ) from exc
        username, _, password = decoded.partition(":")
        return RegistryCredentials(username=username, password=password)

    def ensure_repository(self) -> None:
        """Create the repository when `createRepository` allows it; an existing one is left as it is."""
        if not self.target.config.create_repository:
            return
        kwargs: dict[str, Any] = {"repositoryName": self.target.repository_path}
        account = self._account()
        if account:
            kwargs["registryId"] = account
        try:
            self._client().create_repository(**kwargs)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "RepositoryAlreadyExistsException":
                return
            raise RegistryError(
                self.target.describe(),
                f"ecr:CreateRepository {self.target.repository_path} failed: {_cause(exc)}",
            ) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise RegistryError(
                self.target.describe(), f"ecr:CreateRepository failed: {_cause(exc)}"
            ) from exc

    def _account(self) -> str | None:
        match = _ECR_HOST.match(self.target.registry)
        return match.group("account") if match else None

    def _region(self) -> str:
        if self.target.config.region:
            return self.target.config.region
        match = _ECR_HOST.match(self.target.registry)
        if match:
            return match.group("region")
        raise ConfigError(
            f"registry {self.target.describe()}: an ECR registry needs `region` when its host "
            "is not <account>.dkr.ecr.<region>.amazonaws.com",
            key="registries.region",
        )

    def _client(self) -> Any:
        return boto3.session.Session().client("ecr", region_name=self._region(), config=_BOTO_CONFIG)


def _cause(exc: Exception) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', str(exc))}"
    return str(exc)
