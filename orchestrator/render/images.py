"""Which image a cluster runs: named outright, built (pinned by digest), or the environment's default."""

from __future__ import annotations

from orchestrator.config import ClusterConfig, Environment, Pipeline
from orchestrator.errors import ConfigError


def image_for(
    pipeline: Pipeline,
    environment: Environment,
    cluster: ClusterConfig,
    *,
    image: str | None = None,
    digest: str | None = None,
    built_repository: str | None = None,
) -> str:
    """The image reference rendered into `cluster`'s manifests.

    A built release (`digest`) is pulled from the registry the cluster names (else from `built_repository`,
    where the build pushed it), always by digest, so every cloud runs the same bytes. Without one: the
    image given on the command line, else the environment's image for the service, else the service's
    repository in the cluster's registry at `latest` (what `render` shows before anything was built).
    """
    if image:
        return image
    registry = environment.registries.get(cluster.registry) if cluster.registry else None
    repository = pipeline.build.repository if pipeline.build else None
    if digest and registry and repository:
        return f"{registry.host}/{repository}@{digest}"
    if digest and built_repository:  # a cluster with no registry of its own: where the build pushed it
        return f"{built_repository}@{digest}"
    named = environment.images.get(pipeline.service)
    if named is not None:
        return named.reference
    if registry and repository:
        return f"{registry.host}/{repository}:latest"
    raise ConfigError(
        f"no image for service {pipeline.service!r} in cluster {cluster.name!r}: give --image, name one "
        f"under `images.{pipeline.service}` in the environment, or give the cluster a registry "
        "and the pipeline a build.repository",
        file=f"environments/{environment.name}.yaml",
    )
