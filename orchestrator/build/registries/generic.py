"""Any registry that takes a user name and a token over basic auth: GHCR, Docker Hub, Harbor, a local one.

The user name and secret come from the environment variables the registry config names (CI secrets), or
else from what `docker login` saved; with neither, the registry is used anonymously.
"""

from __future__ import annotations

import os

from orchestrator.build.registries.base import Registry, RegistryCredentials, docker_config_credentials
from orchestrator.errors import ConfigError


class GenericRegistry(Registry):
    kind = "generic"

    def credentials(self) -> RegistryCredentials:
        config = self.target.config
        if config.username_env is None and config.password_env is None:
            return docker_config_credentials(self.target.registry)
        username = _variable(config.username_env, "usernameEnv", self.target.describe())
        password = _variable(config.password_env, "passwordEnv", self.target.describe())
        return RegistryCredentials(username=username, password=password)


def _variable(name: str | None, key: str, registry: str) -> str | None:
    if name is None:
        return None
    value = os.environ.get(name)
    if value is None:
        raise ConfigError(
            f"registry {registry}: {key} names the environment variable {name}, which is not set",
            key=f"registries.{key}",
        )
    return value
