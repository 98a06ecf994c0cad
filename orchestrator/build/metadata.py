"""The tags and OCI labels an image gets from the commit it is built from."""

from __future__ import annotations

from datetime import datetime

from orchestrator.build.source import SourceRevision

LABEL_REVISION = "org.opencontainers.image.revision"
LABEL_SOURCE = "org.opencontainers.image.source"
LABEL_CREATED = "org.opencontainers.image.created"
LABEL_VERSION = "org.opencontainers.image.version"
LABEL_TITLE = "org.opencontainers.image.title"


def image_tags(revision: SourceRevision) -> list[str]:
    """The full SHA first (the tag "build once" looks for), then the short SHA, then each semver tag.

    Docker tags cannot hold "+", so semver build metadata is joined with "_" (as Helm does for OCI charts).
    """
    tags = [revision.sha, revision.short_sha]
    tags += [version.replace("+", "_") for version in revision.versions]
    return list(dict.fromkeys(tags))


def oci_labels(revision: SourceRevision, *, service: str, created: datetime) -> dict[str, str]:
    labels = {
        LABEL_REVISION: revision.sha,
        LABEL_CREATED: created.isoformat().replace("+00:00", "Z"),
        LABEL_VERSION: revision.version,
        LABEL_TITLE: service,
    }
    if revision.source_url:
        labels[LABEL_SOURCE] = revision.source_url
    return labels
