"""Image references as Docker writes them: `[registry/]repository[:tag][@sha256:…]`."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


@dataclass(frozen=True)
class ImageReference:
    """A parsed reference; `registry` is the host (and port) the image lives on."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """`registry/repository`, the part before any tag or digest."""
        return f"{self.registry}/{self.repository}"

    def with_digest(self, digest: str) -> str:
        return f"{self.name}@{digest}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(ref: str) -> ImageReference:
    """Split a reference; a ValueError names what is wrong with it."""
    text = ref.strip()
    if not text:
        raise ValueError("an image reference cannot be empty")
    name, _, digest = text.partition("@")
    if digest and not DIGEST_PATTERN.match(digest):
        raise ValueError(f"{ref!r}: the digest must be sha256: followed by 64 hex digits")
    tag: str | None = None
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG_PATTERN.match(tag):
            raise ValueError(f"{ref!r}: {tag!r} is not a valid tag")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, name
        if "/" not in repository:
            repository = f"library/{repository}"
    for component in repository.split("/"):
        if not _PATH_COMPONENT.match(component):
            raise ValueError(f"{ref!r}: {component!r} is not a valid repository name part (lower case only)")
    if not tag and not digest:
        tag = "latest"
    return ImageReference(registry=registry, repository=repository, tag=tag, digest=digest or None)


def split_registry(host_and_path: str) -> tuple[str, str]:
    """`ghcr.io/addtocloud` → (`ghcr.io`, `addtocloud`): the registry host and a path prefix (maybe empty)."""
    host, _, path = host_and_path.strip().strip("/").partition("/")
    return host, path.strip("/")


def is_loopback(registry: str) -> bool:
    """A registry on this machine: Docker talks plain HTTP to it (127.0.0.0/8 is insecure by default)."""
    if registry.startswith("[") and "]" in registry:
        host = registry[1 : registry.index("]")]
    else:
        host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def registry_api_host(registry: str) -> str:
    """Where the registry API of a host really is: Docker Hub's images are served by registry-1.docker.io."""
    return "registry-1.docker.io" if registry == DOCKER_HUB else registry
