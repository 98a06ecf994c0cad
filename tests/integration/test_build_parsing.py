"""The small pure parts of the build: references, tags, labels, remotes and Dockerfile steps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.build.builder import dockerfile_instructions
from orchestrator.build.metadata import image_tags, oci_labels
from orchestrator.build.reference import is_loopback, parse_reference
from orchestrator.build.source import SourceRevision, public_url, semver_of
from orchestrator.build.targets import override_target
from orchestrator.errors import ConfigError

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("ref", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", "latest", None),
        ("nginx:1.25", "docker.io", "library/nginx", "1.25", None),
        ("127.0.0.1:5000/team/api:abc", "127.0.0.1:5000", "team/api", "abc", None),
        ("localhost/api", "localhost", "api", "latest", None),
        (f"ghcr.io/o/api@sha256:{'a' * 64}", "ghcr.io", "o/api", None, f"sha256:{'a' * 64}"),
    ],
)
def test_references_are_split_as_docker_does(
    ref: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    parsed = parse_reference(ref)
    assert (parsed.registry, parsed.repository, parsed.tag, parsed.digest) == (
        registry,
        repository,
        tag,
        digest,
    )


@pytest.mark.parametrize("ref", ["", "Upper/Case:1", "ghcr.io/o/api@sha256:short", "api:bad tag"])
def test_bad_references_are_refused(ref: str) -> None:
    with pytest.raises(ValueError):
        parse_reference(ref)


def test_loopback_registries_are_plain_http() -> None:
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost:5000") and is_loopback("[::1]:5000")
    assert not is_loopback("ghcr.io") and not is_loopback("10.0.0.5:5000")


def test_tags_are_the_full_and_short_sha_then_the_versions() -> None:
    revision = SourceRevision(sha=SHA, versions=("2.0.0", "1.0.0+build.7"))
    assert image_tags(revision) == [SHA, SHA[:7], "2.0.0", "1.0.0_build.7"]
    assert revision.version == "2.0.0"
    assert SourceRevision(sha=SHA).version == SHA[:7]


def test_semver_tags_are_recognised() -> None:
    assert semver_of("v1.2.3") == "1.2.3"
    assert semver_of("1.2.3-rc.1") == "1.2.3-rc.1"
    assert semver_of("release-5") is None and semver_of("v1.2") is None


def test_oci_labels() -> None:
    revision = SourceRevision(sha=SHA, versions=("1.2.3",), source_url="https://github.com/o/r")
    labels = oci_labels(revision, service="api", created=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert labels == {
        "org.opencontainers.image.revision": SHA,
        "org.opencontainers.image.created": "2026-01-02T03:04:05Z",
        "org.opencontainers.image.version": "1.2.3",
        "org.opencontainers.image.title": "api",
        "org.opencontainers.image.source": "https://github.com/o/r",
    }


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("git@github.com:o/r.git", "https://github.com/o/r"),
        ("https://x-access-token:secret@github.com/o/r.git", "https://github.com/o/r"),
        ("ssh://git@gitlab.com/group/r.git", "https://gitlab.com/group/r"),
        ("https://github.com/o/r", "https://github.com/o/r"),
    ],
)
def test_remotes_become_browsable_urls_without_credentials(remote: str, url: str) -> None:
    assert public_url(remote) == url


def test_dockerfile_steps_are_numbered_as_the_daemon_numbers_them() -> None:
    text = "# syntax comment\nARG BASE=x\nFROM ${BASE}\n\nRUN a \\\n  # inner comment\n  && b\nUSER 1\n"
    assert dockerfile_instructions(text) == [
        (2, "ARG BASE=x"),
        (3, "FROM ${BASE}"),
        (5, "RUN a && b"),
        (8, "USER 1"),
    ]


def test_registry_override_values() -> None:
    target = override_target("http://registry.internal:5000/team", "addtocloud/api")
    assert target.insecure and target.image_name == "registry.internal:5000/team/addtocloud/api"
    assert override_target("ghcr.io", "o/api").image_name == "ghcr.io/o/api"
    with pytest.raises(ConfigError, match="--registry"):
        override_target("ghcr.io/Upper", "o/api")
