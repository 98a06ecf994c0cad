"""What every kind of registry provides: a place to push (`PushTarget`) and credentials for it."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import docker.auth
import docker.errors

from orchestrator.build.reference import is_loopback, split_registry
from orchestrator.config.environment import RegistryConfig


@dataclass(frozen=True)
class RegistryCredentials:
    """A user name and secret for the registry API and `docker push`; both None means anonymous."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def anonymous(self) -> bool:
        return self.username is None and self.password is None

    def docker_auth_config(self) -> dict[str, str] | None:
        """The `auth_config` the docker SDK sends with a push; None lets it use ~/.docker/config.json."""
        if self.anonymous:
            return None
        return {"username": self.username or "", "password": self.password or ""}

    def basic_header(self) -> str | None:
        if self.anonymous:
            return None
        raw = f"{self.username or ''}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class PushTarget:
    """One registry the image goes to: the configured registry plus the pipeline's repository."""

    name: str  # the registry's key under `registries:` in the environment, or "--registry"
    config: RegistryConfig
    repository: str  # the pipeline's build.repository, e.g. addtocloud/api
    environments: tuple[str, ...] = ()

    @property
    def registry(self) -> str:
        """The host (and port) of the registry API."""
        return split_registry(self.config.host)[0]

    @property
    def repository_path(self) -> str:
        """The repository inside the registry: the host's path prefix plus the pipeline's repository."""
        prefix = split_registry(self.config.host)[1]
        return f"{prefix}/{self.repository}" if prefix else self.repository

    @property
    def image_name(self) -> str:
        """How manifests and `docker push` name the image (no tag): `host/prefix/repository`."""
        return f"{self.registry}/{self.repository_path}"

    @property
    def insecure(self) -> bool:
        """Plain HTTP: asked for, or a registry on this machine (Docker does the same for 127.0.0.0/8)."""
        return self.config.insecure or is_loopback(self.registry)

    def describe(self) -> str:
        return f"{self.name} ({self.registry})" if self.name != self.registry else self.registry


def docker_config_credentials(registry: str) -> RegistryCredentials:
    """What `docker login` saved for the registry (~/.docker/config.json, credential helpers), if anything."""
    try:
        config = docker.auth.load_config()
        entry: dict[str, Any] | None = docker.auth.resolve_authconfig(config, registry)
    except (docker.errors.DockerException, OSError, ValueError):
        return RegistryCredentials()
    if not entry:
        return RegistryCredentials()
    username = entry.get("username") or entry.get("Username")
    password = entry.get("password") or entry.get("Password") or entry.get("IdentityToken")
    return RegistryCredentials(username=username, password=password)


class Registry:
    """Credentials and set-up for one push target; one subclass per kind of registry."""

    kind = "generic"

    def __init__(self, target: PushTarget) -> None:
        self.target = target

    def credentials(self) -> RegistryCredentials:
        raise NotImplementedError

    def ensure_repository(self) -> None:
        """Make the repository exist before a push, where the registry needs that (ECR); others: nothing."""
