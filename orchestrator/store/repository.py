"""The queries and writes the rest of the orchestrator makes, as small typed functions taking a Session.

They flush but never commit: the caller owns the transaction, so a rollout step's state change and its audit
event land together or not at all ("every transition is committed before the next action" is the caller's
commit). Functions that can race with another worker (recording a release, creating a cluster row, taking an
environment) settle the race in the database, not in Python.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.store import transitions
from orchestrator.store.models import (
    ACTIVE_PHASES,
    TERMINAL_PHASES,
    ClusterDeployment,
    Deployment,
    DeploymentEvent,
    DeploymentKind,
    ImmutableRowError,
    Phase,
    Release,
    Strategy,
    utcnow,
)
from orchestrator.store.transitions import Event

DEFAULT_HISTORY_LIMIT = 20
MULTI = "multi"  # cloud_provider/region of a deployment that spans clusters in several clouds or regions
_MIN_ID_PREFIX = 4


class DeploymentNotFoundError(OrchestratorError):
    """No deployment matches the id (or id prefix) given."""


class DeploymentRefError(ConfigError):
    """What was given as a deployment id is not one (bad usage: exit 2)."""


class DeploymentConflictError(OrchestratorError):
    """Another deployment of the same service is already in progress in that environment."""


@dataclass(frozen=True)
class ClusterPlacement:
    """One cluster a deployment will roll out to, as the store records it."""

    name: str
    cloud: str
    region: str
    wave: int | None = None


# --- releases ---------------------------------------------------------------------------------------------


def image_ref_for(repository: str, *, digest: str | None = None, tag: str | None = None) -> str:
    """How manifests name the image: by digest once known (build once, promote by digest), else by tag."""
    if digest:
        return f"{repository}@{digest}"
    if tag:
        return f"{repository}:{tag}"
    return repository


def get_or_create_release(
    session: Session,
    *,
    service: str,
    git_commit: str,
    image_repository: str,
    manifest_hash: str,
    image_digest: str | None = None,
    image_tag: str | None = None,
    values_hash: str | None = None,
    created_by: str | None = None,
    committed_at: datetime | None = None,
) -> Release:
    """The release with this identity, recording it first if this is the first time it is seen.

    Identity is (service, git commit, image reference, manifest hash). Two workers recording the same release
    at once both get the one row: the loser of the insert race finds the winner's.
    """
    image_ref = image_ref_for(image_repository, digest=image_digest, tag=image_tag)
    query = select(Release).where(
        Release.service == service,
        Release.git_commit == git_commit,
        Release.image_ref == image_ref,
        Release.manifest_hash == manifest_hash,
    )
    existing = session.scalars(query).one_or_none()
    if existing is not None:
        return existing
    release = Release(
        service=service,
        git_commit=git_commit,
        image_repository=image_repository,
        image_ref=image_ref,
        image_digest=image_digest,
        manifest_hash=manifest_hash,
        values_hash=values_hash,
        created_by=created_by,
        committed_at=committed_at,
    )
    try:
        with session.begin_nested():
            session.add(release)
    except IntegrityError:
        return session.scalars(query).one()
    return release


def get_release(session: Session, release_id: uuid.UUID) -> Release:
    release = session.get(Release, release_id)
    if release is None:
        raise OrchestratorError(f"no release with id {release_id}")
    return release


class ReleaseNotFoundError(OrchestratorError):
    """No release of the service matches the id (or id prefix) given."""


def find_release(session: Session, service: str, ref: str) -> Release:
    """The service's release whose id is `ref` or starts with it (at least 4 hex digits)."""
    digits = ref.strip().lower().replace("-", "")
    if len(digits) < _MIN_ID_PREFIX or any(c not in "0123456789abcdef" for c in digits):
        raise DeploymentRefError(
            f"{ref!r} is not a release id; give the id or its first {_MIN_ID_PREFIX}+ hex digits "
            f"(`orchestrator releases {service}` lists them)"
        )
    hex_id = func.replace(cast(Release.id, String), "-", "")
    query = select(Release).where(Release.service == service, hex_id.like(f"{digits}%")).limit(5)
    matches = list(session.scalars(query))
    if not matches:
        raise ReleaseNotFoundError(
            f"{service} has no release whose id starts with {ref!r} (`orchestrator releases {service}`)"
        )
    if len(matches) > 1:
        listing = ", ".join(str(r.id) for r in matches)
        raise ReleaseNotFoundError(
            f"{ref!r} matches several releases of {service} ({listing}); give more digits"
        )
    return matches[0]


def succeeded_deployments(session: Session, service: str, environment: str) -> list[Deployment]:
    """The service's Succeeded deployments in the environment, newest first (what it was verified by)."""
    query = (
        select(Deployment)
        .where(
            Deployment.service == service,
            Deployment.environment == environment,
            Deployment.phase == Phase.SUCCEEDED.value,
        )
        .order_by(Deployment.created_at.desc(), Deployment.id.desc())
    )
    return list(session.scalars(query))


@dataclass(frozen=True)
class ReleaseTrail:
    """A release and the deployments that verified it (Succeeded), oldest first: where it has been."""

    release: Release
    verified: list[Deployment]


def release_trails(session: Session, service: str, limit: int = DEFAULT_HISTORY_LIMIT) -> list[ReleaseTrail]:
    """The service's releases, newest first, each with its trail: derived from the deployments, so the
    trail is exactly what the store says ran to the end."""
    if limit < 1:
        raise OrchestratorError(f"limit must be at least 1, not {limit}")
    releases = list(
        session.scalars(
            select(Release)
            .where(Release.service == service)
            .order_by(Release.created_at.desc(), Release.id.desc())
            .limit(limit)
        )
    )
    verified: dict[uuid.UUID, list[Deployment]] = {r.id: [] for r in releases}
    if releases:
        query = (
            select(Deployment)
            .where(Deployment.release_id.in_(list(verified)), Deployment.phase == Phase.SUCCEEDED.value)
            .order_by(Deployment.created_at, Deployment.id)
        )
        for deployment in session.scalars(query):
            verified[deployment.release_id].append(deployment)
    return [ReleaseTrail(r, verified[r.id]) for r in releases]


def set_release_digest(session: Session, release: Release, digest: str) -> None:
    """Record the digest of a release's image once it is built; a release never changes its digest."""
    if release.image_digest == digest:
        return
    if release.image_digest is not None:
        raise ImmutableRowError(
            f"release {release.id} of {release.service} already has image digest {release.image_digest}; "
            f"refusing to change it to {digest}"
        )
    release.image_digest = digest
    session.flush()


# --- deployments ------------------------------------------------------------------------------------------


def _one_or_multi(values: Collection[str]) -> str:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else MULTI


def create_deployment(
    session: Session,
    *,
    release: Release,
    environment: str,
    strategy: Strategy | str,
    clusters: Sequence[ClusterPlacement],
    name: str | None = None,
    actor: str | None = None,
    reason: str | None = None,
    config: dict[str, Any] | None = None,
    user_id: uuid.UUID | None = None,
    kind: DeploymentKind = DeploymentKind.DEPLOY,
    undoes: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Deployment:
    """A new Pending deployment of `release` to `environment`: a Pending row per cluster, and a first event.
    `kind` says how it came about (deploy, promote, rollback); a rollback names the deployment it `undoes`.

    `cloud_provider` and `region` are the clusters' own when they all share one, 'multi' otherwise.
    """
    if not clusters:
        raise OrchestratorError(f"deployment of {release.service} to {environment} names no clusters")
    names = [placement.name for placement in clusters]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise OrchestratorError(
            f"deployment to {environment} lists cluster(s) twice: {', '.join(duplicates)}"
        )
    moment = now or utcnow()
    deployment = Deployment(
        release=release,
        service=release.service,
        environment=environment,
        strategy=_parse_strategy(strategy).value,
        name=name or f"{release.service}-{environment}-{release.git_commit[:12]}",
        cloud_provider=_one_or_multi([placement.cloud for placement in clusters]),
        region=_one_or_multi([placement.region for placement in clusters]),
        phase=Phase.PENDING.value,
        status=Phase.PENDING.seed_status,
        actor=actor,
        reason=reason,
        config=config,
        user_id=user_id,
        kind=kind.value,
        undoes_id=undoes,
        created_at=moment,
        updated_at=moment,
    )
    session.add(deployment)
    for placement in clusters:
        session.add(
            ClusterDeployment(
                deployment=deployment,
                cluster=placement.name,
                cloud=placement.cloud,
                region=placement.region,
                wave=placement.wave,
                updated_at=moment,
            )
        )
    session.flush()
    append_event(
        session,
        deployment,
        "created",
        f"{release.service} {release.image_ref} to {environment} ({len(clusters)} cluster(s))",
        data={"release_id": str(release.id), "clusters": names},
        actor=actor,
        now=moment,
    )
    return deployment


def append_event(
    session: Session,
    deployment: Deployment,
    type: str,
    message: str,
    *,
    step: int | None = None,
    cluster: str | None = None,
    data: dict[str, Any] | None = None,
    actor: str | None = None,
    now: datetime | None = None,
) -> DeploymentEvent:
    """Add a line to the deployment's audit trail, numbered one past the last.

    The number comes from an UPDATE … RETURNING on the deployment's counter: the row lock it takes makes
    concurrent appenders for one deployment queue up, and a rolled-back transaction gives its number back,
    so `seq` runs 1, 2, 3… without gaps or repeats.
    """
    moment = now or utcnow()
    if actor is None:
        actor = deployment.actor  # what the engine does, it does on behalf of whoever started the deployment
    session.flush()  # a deployment created in this session must exist before its counter can be bumped
    seq = session.execute(
        update(Deployment)
        .where(Deployment.id == deployment.id)
        .values(last_event_seq=Deployment.last_event_seq + 1, updated_at=moment)
        .returning(Deployment.last_event_seq)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    # Keep the object in step with the row without marking it changed (which would write it again).
    set_committed_value(deployment, "last_event_seq", seq)
    set_committed_value(deployment, "updated_at", moment)
    event = DeploymentEvent(
        deployment_id=deployment.id,
        seq=seq,
        type=type,
        message=message,
        step=step,
        cluster=cluster,
        data=data,
        actor=actor,
        created_at=moment,
    )
    session.add(event)
    session.flush()
    return event


def set_phase(
    session: Session,
    deployment: Deployment,
    phase: Phase | str,
    *,
    event: Event,
    message: str | None = None,
    step: int | None = None,
    actor: str | None = None,
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> DeploymentEvent:
    """Move the deployment to `phase` on `event` (and `step`), stamp start/finish times, and record it.

    The move must be a row of the state machine (`transitions.TABLE`): anything else raises
    TransitionError naming both phases, and nothing changes. Taking the environment (Progressing or Paused)
    fails with DeploymentConflictError while another deployment of the service holds it; the database's
    unique index decides, so two workers cannot both win.
    """
    new_phase = _parse_phase(phase)
    old_phase = deployment.phase
    transitions.check(old_phase, event, new_phase)
    moment = now or utcnow()
    try:
        with session.begin_nested():
            deployment.phase = new_phase.value
            deployment.status = new_phase.seed_status
            if message is not None:
                deployment.message = message
            if step is not None:
                deployment.current_step = step
            if new_phase is Phase.PROGRESSING and deployment.started_at is None:
                deployment.started_at = moment
            deployment.finished_at = moment if new_phase in TERMINAL_PHASES else None
            deployment.updated_at = moment
    except IntegrityError as exc:
        holder = latest_deployment(session, deployment.service, deployment.environment, phases=ACTIVE_PHASES)
        held_by = f" by deployment {holder.id} ({holder.phase})" if holder is not None else ""
        raise DeploymentConflictError(
            f"{deployment.service} in {deployment.environment} is already being rolled out{held_by}; "
            f"deployment {deployment.id} cannot become {new_phase.value} until it finishes"
        ) from exc
    return append_event(
        session,
        deployment,
        "phase",
        message or f"{old_phase} -> {new_phase.value}",
        step=step,
        data={**(data or {}), "from": old_phase, "to": new_phase.value, "event": event.value},
        actor=actor,
        now=moment,
    )


def _parse_strategy(strategy: Strategy | str) -> Strategy:
    try:
        return Strategy(strategy)
    except ValueError:
        known = ", ".join(s.value for s in Strategy)
        raise OrchestratorError(f"unknown rollout strategy {strategy!r}; known strategies: {known}") from None


def _parse_phase(phase: Phase | str) -> Phase:
    try:
        return Phase(phase)
    except ValueError:
        known = ", ".join(p.value for p in Phase)
        raise OrchestratorError(f"unknown deployment phase {phase!r}; known phases: {known}") from None


def upsert_cluster_deployment(
    session: Session,
    deployment: Deployment,
    cluster: str,
    *,
    cloud: str | None = None,
    region: str | None = None,
    wave: int | None = None,
    phase: Phase | str | None = None,
    canary_weight: int | None = None,
    stable_weight: int | None = None,
    message: str | None = None,
    now: datetime | None = None,
) -> ClusterDeployment:
    """Record the state of one cluster of a deployment; only the fields given change.

    Setting `canary_weight` alone sets `stable_weight` to the rest of 100. A new cluster row needs its
    `cloud` and `region`.
    """
    for label, weight in (("canary_weight", canary_weight), ("stable_weight", stable_weight)):
        if weight is not None and not 0 <= weight <= 100:
            raise OrchestratorError(f"{label} for cluster {cluster} must be between 0 and 100, not {weight}")
    if canary_weight is not None and stable_weight is None:
        stable_weight = 100 - canary_weight
    new_phase = _parse_phase(phase).value if phase is not None else None
    query = select(ClusterDeployment).where(
        ClusterDeployment.deployment_id == deployment.id, ClusterDeployment.cluster == cluster
    )
    row = session.scalars(query).one_or_none()
    if row is None:
        if cloud is None or region is None:
            raise OrchestratorError(
                f"cluster {cluster} is new to deployment {deployment.id}; its cloud and region are needed"
            )
        row = ClusterDeployment(deployment_id=deployment.id, cluster=cluster, cloud=cloud, region=region)
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            row = session.scalars(query).one()
    changes: dict[str, Any] = {
        "cloud": cloud,
        "region": region,
        "wave": wave,
        "phase": new_phase,
        "canary_weight": canary_weight,
        "stable_weight": stable_weight,
        "message": message,
    }
    for attribute, value in changes.items():
        if value is not None:
            setattr(row, attribute, value)
    row.updated_at = now or utcnow()
    session.flush()
    return row


# --- reading ----------------------------------------------------------------------------------------------


def list_deployments(
    session: Session,
    service: str | None,
    environment: str | None = None,
    limit: int = DEFAULT_HISTORY_LIMIT,
    *,
    actor: str | None = None,
    phases: Collection[Phase | str] | None = None,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
) -> list[Deployment]:
    """The service's (None: every service's) deployments, newest first (optionally in one environment,
    by one actor — the audit name, matched case-insensitively — in `phases`, created in [from, before))."""
    if limit < 1:
        raise OrchestratorError(f"limit must be at least 1, not {limit}")
    query = select(Deployment)
    if service is not None:
        query = query.where(Deployment.service == service)
    if environment is not None:
        query = query.where(Deployment.environment == environment)
    if actor is not None:
        query = query.where(func.lower(Deployment.actor) == actor.lower())
    if phases is not None:
        query = query.where(Deployment.phase.in_([Phase(p).value for p in phases]))
    if created_from is not None:
        query = query.where(Deployment.created_at >= created_from)
    if created_before is not None:
        query = query.where(Deployment.created_at < created_before)
    query = (
        query.order_by(Deployment.created_at.desc(), Deployment.id.desc())
        .limit(limit)
        .options(selectinload(Deployment.clusters))
    )
    return list(session.scalars(query))


def latest_deployment(
    session: Session,
    service: str,
    environment: str,
    *,
    phases: Collection[Phase | str] | None = None,
) -> Deployment | None:
    """The newest deployment of the service in the environment, optionally only among `phases`.

    `phases={Phase.SUCCEEDED}` is the last good release (what a rollback goes back to);
    `phases=ACTIVE_PHASES` is the rollout currently holding the environment.
    """
    query = select(Deployment).where(Deployment.service == service, Deployment.environment == environment)
    if phases is not None:
        query = query.where(Deployment.phase.in_([_parse_phase(p).value for p in phases]))
    query = query.order_by(Deployment.created_at.desc(), Deployment.id.desc()).limit(1)
    return session.scalars(query).first()


def list_releases(
    session: Session, service: str | None = None, limit: int = DEFAULT_HISTORY_LIMIT
) -> list[Release]:
    """Releases, newest first (optionally of one service only)."""
    query = select(Release)
    if service is not None:
        query = query.where(Release.service == service)
    return list(session.scalars(query.order_by(Release.created_at.desc(), Release.id.desc()).limit(limit)))


def get_deployment(session: Session, ref: uuid.UUID | str) -> Deployment:
    """The deployment with this id, or the one whose id starts with `ref` (at least 4 hex digits)."""
    if isinstance(ref, uuid.UUID):
        found = session.get(Deployment, ref)
        if found is None:
            raise DeploymentNotFoundError(f"no deployment with id {ref}")
        return found
    digits = ref.strip().lower().replace("-", "")
    if len(digits) < _MIN_ID_PREFIX or any(c not in "0123456789abcdef" for c in digits):
        raise DeploymentRefError(
            f"{ref!r} is not a deployment id; give the id or its first {_MIN_ID_PREFIX}+ hex digits"
        )
    if len(digits) == 32:
        return get_deployment(session, uuid.UUID(digits))
    # Postgres prints UUIDs with dashes, SQLite stores 32 hex digits: compare without dashes on both.
    hex_id = func.replace(cast(Deployment.id, String), "-", "")
    matches = list(session.scalars(select(Deployment).where(hex_id.like(f"{digits}%")).limit(5)))
    if not matches:
        raise DeploymentNotFoundError(f"no deployment id starts with {ref!r}")
    if len(matches) > 1:
        listing = ", ".join(str(d.id) for d in matches)
        raise DeploymentNotFoundError(f"{ref!r} matches several deployments ({listing}); give more digits")
    return matches[0]


def events_for(session: Session, deployment_id: uuid.UUID, *, after_seq: int = 0) -> list[DeploymentEvent]:
    """The deployment's audit trail in order; `after_seq` gives only what came after an event already seen."""
    query = (
        select(DeploymentEvent)
        .where(DeploymentEvent.deployment_id == deployment_id, DeploymentEvent.seq > after_seq)
        .order_by(DeploymentEvent.seq)
    )
    return list(session.scalars(query))


def built_image(session: Session, service: str, commit: str) -> tuple[str, str] | None:
    """(repository, digest) of the image built for `commit`, if `orchestrator build` recorded one."""
    query = (
        select(Release.image_repository, Release.image_digest)
        .where(Release.service == service, Release.git_commit == commit, Release.image_digest.is_not(None))
        .order_by(Release.created_at.desc())
        .limit(1)
    )
    row = session.execute(query).first()
    return (row[0], row[1]) if row is not None and row[1] else None
