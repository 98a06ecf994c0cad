"""`deploy --image REF`: pin a tag to the digest it points to now, so every cluster runs the same bytes."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.build.distribution import RegistryClient
from orchestrator.build.errors import RegistryError
from orchestrator.build.reference import is_loopback, parse_reference, split_registry
from orchestrator.build.registries import PushTarget, RegistryCredentials, registry_for
from orchestrator.build.registries.base import docker_config_credentials
from orchestrator.config.environment import RegistryConfig
from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.logs import get_logger

log = get_logger(__name__)


class ImageNotFoundError(OrchestratorError):
    """The registry answered, and it has no image under that tag."""


def resolve_image(ref: str, *, registries: Sequence[RegistryConfig] = ()) -> str:
    """`repo:tag` → `repo@sha256:…` when the registry is reachable; a digest reference is returned as is.

    Credentials: those of a configured registry with the same host (ECR, ACR, GAR tokens), else what
    `docker login` saved. When the registry cannot be reached or refuses us, the tag is returned unchanged
    (the cluster may well be able to pull it) and a warning says so; a tag the registry does not have fails.
    """
    try:
        parsed = parse_reference(ref)
    except ValueError as exc:
        raise ConfigError(f"--image {ref!r}: {exc}", key="--image") from None
    if parsed.digest:
        return ref.strip()
    assert parsed.tag is not None
    credentials, insecure, label = _access(parsed.registry, parsed.repository, registries)
    try:
        with RegistryClient(
            parsed.registry, credentials=credentials, insecure=insecure, label=label
        ) as client:
            digest = client.manifest_digest(parsed.repository, parsed.tag)
    except RegistryError as exc:
        log.warning("image not pinned to a digest: registry unavailable", image=ref, reason=exc.reason)
        return ref.strip()
    if digest is None:
        raise ImageNotFoundError(f"registry {label} has no image {parsed.repository}:{parsed.tag}")
    name = ref.strip().split("@")[0]
    # Keep the name as the user wrote it (e.g. `nginx`, not `docker.io/library/nginx`), minus the tag.
    if name.rfind(":") > name.rfind("/"):
        name = name[: name.rfind(":")]
    return f"{name}@{digest}"


def _access(
    registry: str, repository: str, registries: Sequence[RegistryConfig]
) -> tuple[RegistryCredentials, bool, str]:
    for config in registries:
        host, prefix = split_registry(config.host)
        if host != registry:
            continue
        if prefix and not (repository == prefix or repository.startswith(prefix + "/")):
            continue
        inner = repository[len(prefix) + 1 :] if prefix else repository
        target = PushTarget(name=host, config=config, repository=inner)
        return registry_for(target).credentials(), target.insecure, target.describe()
    return docker_config_credentials(registry), is_loopback(registry), registry
