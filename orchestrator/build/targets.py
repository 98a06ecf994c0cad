"""Which registries an image goes to: those the clusters of the target environments pull from, or one
registry named on the command line (`--registry HOST[/PATH]`)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from orchestrator.build.registries.base import PushTarget
from orchestrator.config import Pipeline, Project
from orchestrator.config.environment import RegistryConfig
from orchestrator.errors import ConfigError

OVERRIDE_NAME = "--registry"
# Credentials for a registry given with --registry (else whatever `docker login` saved for it).
OVERRIDE_USERNAME_ENV = "ORCHESTRATOR_REGISTRY_USERNAME"
OVERRIDE_PASSWORD_ENV = "ORCHESTRATOR_REGISTRY_PASSWORD"

_HOST = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?$")
_PATH_PART = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


def override_target(value: str, repository: str) -> PushTarget:
    """`--registry HOST[/PATH]` (`http://` in front for a plain-HTTP registry) as the only push target."""
    text = value.strip()
    insecure = False
    for scheme in ("http://", "https://"):
        if text.startswith(scheme):
            insecure = scheme == "http://"
            text = text[len(scheme) :]
    text = text.strip("/")
    host, _, path = text.partition("/")
    if not _HOST.match(host) or any(not _PATH_PART.match(part) for part in path.split("/") if path):
        raise ConfigError(
            f"--registry {value!r} is not HOST[:PORT][/PATH] (path parts in lower case), "
            "e.g. 127.0.0.1:5000/team",
            key="--registry",
        )
    config = RegistryConfig(
        type="generic",
        host=text,
        insecure=insecure,
        username_env=OVERRIDE_USERNAME_ENV if OVERRIDE_USERNAME_ENV in os.environ else None,
        password_env=OVERRIDE_PASSWORD_ENV if OVERRIDE_PASSWORD_ENV in os.environ else None,
    )
    return PushTarget(name=host, config=config, repository=repository)


def push_targets(
    project: Project,
    pipeline: Pipeline,
    *,
    envs: Sequence[str] | None = None,
    registry_override: str | None = None,
) -> list[PushTarget]:
    """The registries to push to, each once, in the order the environments and their clusters name them."""
    if pipeline.build is None:
        raise _no_build(pipeline)
    repository = pipeline.build.repository
    if registry_override:
        return [override_target(registry_override, repository)]
    names = list(envs) if envs else pipeline.promotion_environments
    if not names:
        raise ConfigError(
            "the pipeline has no promotion environments, so there is no registry to push to; "
            "give --env ENV or --registry HOST[/PATH]",
            file=f"pipelines/{pipeline.service}.yaml",
            key="promotion",
        )
    found: dict[str, PushTarget] = {}
    for env_name in names:
        environment = project.environment(env_name)
        for cluster in environment.clusters:
            if cluster.registry is None:
                continue
            config = environment.registries[cluster.registry]
            target = PushTarget(name=cluster.registry, config=config, repository=repository)
            known = found.get(target.image_name)
            environments = (*known.environments, env_name) if known else (env_name,)
            if known is not None and env_name in known.environments:
                continue
            # The same registry in several environments is pushed to once; creating the repository is
            # allowed when any of them allows it.
            merged = known.config if known else config
            if known and config.create_repository and not merged.create_repository:
                merged = merged.model_copy(update={"create_repository": True})
            found[target.image_name] = PushTarget(
                name=known.name if known else cluster.registry,
                config=merged,
                repository=repository,
                environments=environments,
            )
    if not found:
        raise ConfigError(
            f"no cluster of {', '.join(names)} names a registry, so there is nowhere to push to; "
            "add `registry:` to the clusters or give --registry HOST[/PATH]",
            file=f"environments/{names[0]}.yaml",
            key="clusters",
        )
    return list(found.values())


def _no_build(pipeline: Pipeline) -> ConfigError:
    return ConfigError(
        f"service {pipeline.service!r} has no build section, so there is nothing to build",
        file=f"pipelines/{pipeline.service}.yaml",
        key="build",
    )
