"""Small text formats the templates share (registered as Jinja filters in `pages.py`)."""

from __future__ import annotations

from datetime import UTC, datetime


def age(moment: str | datetime | None, now: datetime | None = None) -> str:
    """How long ago, in the largest whole unit: `40s`, `5m`, `3h`, `2d`; an empty string for nothing."""
    if moment is None or moment == "":
        return ""
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = max(0, int(((now or datetime.now(UTC)) - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def short_commit(commit: str | None) -> str:
    return (commit or "")[:8]


def short_digest(image: str | None) -> str:
    """`sha256:` and 12 hex digits of an image reference by digest; the tag (or the whole) otherwise."""
    if not image:
        return ""
    if "@sha256:" in image:
        return "sha256:" + image.split("@sha256:", 1)[1][:12]
    return image.rsplit("/", 1)[-1]
