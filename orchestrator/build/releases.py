"""Recording what a build pushed: one release row per registry repository, written only after every push
and every digest check succeeded, in one transaction."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable

from sqlalchemy.orm import Session

from orchestrator.store import db, repository

# A release recorded by `build` has not been rendered for any environment yet; `deploy` records the release
# with the hash of the manifests it renders.
UNRENDERED_MANIFEST_HASH = "unrendered"


def check_database(database_url: str) -> None:
    """Fail before building when the release could not be recorded afterwards (the embedded database is
    created here, as every command creates it)."""
    engine = db.make_engine(database_url)
    try:
        db.ensure_schema(engine)
    finally:
        engine.dispose()


def record_releases(
    database_url: str,
    *,
    service: str,
    commit: str,
    digest: str,
    image_names: Iterable[str],
    actor: str | None = None,
) -> list[str]:
    """Record (or find) the release of `digest` in each image repository; returns the release IDs."""
    engine = db.make_engine(database_url)
    try:
        with db.session_factory(engine)() as session, session.begin():
            return record_built(
                session, service=service, commit=commit, digest=digest, image_names=image_names, actor=actor
            )
    finally:
        engine.dispose()


def record_built(
    session: Session,
    *,
    service: str,
    commit: str,
    digest: str,
    image_names: Iterable[str],
    actor: str | None = None,
) -> list[str]:
    """`record_releases` in the caller's transaction (the server records a build a client pushed)."""
    releases = [
        repository.get_or_create_release(
            session,
            service=service,
            git_commit=commit,
            image_repository=name,
            image_digest=digest,
            manifest_hash=UNRENDERED_MANIFEST_HASH,
            created_by=actor or default_actor(),
        )
        for name in image_names
    ]
    return [str(release.id) for release in releases]


def default_actor() -> str | None:
    """Who is building: the CI actor when there is one, else the local user."""
    actor = os.environ.get("GITHUB_ACTOR")
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
