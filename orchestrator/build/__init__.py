"""Build once, push by digest: images built with the docker SDK and copied unchanged to every registry.

`build_and_push` is what `orchestrator build` and `deploy` call; `resolve_image` pins `deploy --image` tags.
"""

from orchestrator.build.build_once import BuildResult, build_and_push
from orchestrator.build.errors import (
    BuildFailedError,
    DigestMismatchError,
    DockerUnavailableError,
    RegistryError,
)
from orchestrator.build.resolve import ImageNotFoundError, resolve_image

__all__ = [
    "BuildFailedError",
    "BuildResult",
    "DigestMismatchError",
    "DockerUnavailableError",
    "ImageNotFoundError",
    "RegistryError",
    "build_and_push",
    "resolve_image",
]
