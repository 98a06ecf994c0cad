"""The state the orchestrator keeps: users, access requests, API tokens, releases, deployments, audit trail.

The column types work on both SQLite (the embedded default) and Postgres (production): UUIDs are native on
Postgres and CHAR(32) on SQLite, JSON becomes JSONB on Postgres, and every timestamp is timezone-aware UTC
on the way in and on the way out (SQLite keeps no zone, so `UTCDateTime` puts UTC back on read).

Two tables are written once and never changed: `releases` (a release is promoted unchanged; only a digest
that was unknown when it was recorded may be filled in) and `deployment_events` (the audit trail). The ORM
refuses updates to them, so a bug shows up as an error instead of a rewritten history.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    event,
    func,
    inspect,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from orchestrator.errors import OrchestratorError


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the one clock the store reads; tests may pass `now=` instead)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware.

    Naive datetimes are refused on the way in: guessing their zone is how audit trails get shifted by hours.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the store; use an aware UTC time")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSON everywhere, JSONB on Postgres (indexable, compact, and what the seed schema uses).
JSONType = JSON().with_variant(JSONB(), "postgresql")

# Stable constraint names, so migrations can refer to (and SQLite batch mode can rebuild) constraints by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, uuid.UUID: Uuid()}


class Role(enum.StrEnum):
    ADMIN = "admin"
    DEPLOYER = "deployer"
    VIEWER = "viewer"


class Phase(enum.StrEnum):
    """Where a deployment (or one cluster of it) stands; the names Argo Rollouts users know."""

    PENDING = "Pending"
    AWAITING_APPROVAL = "AwaitingApproval"  # recorded, nothing touched: waits for an approver
    AWAITING_MERGE = "AwaitingMerge"  # a pull request of its desired state: waits for the merge
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    SUCCEEDED = "Succeeded"
    ABORTED = "Aborted"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"

    @property
    def seed_status(self) -> str:
        """The seed schema's lower-case `status` for this phase: RolledBack -> rolled_back."""
        return "".join(f"_{c.lower()}" if c.isupper() else c for c in self.value).lstrip("_")


# A deployment in one of these phases is over: it gets a finished_at and no longer holds its environment.
TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.ABORTED, Phase.ROLLED_BACK, Phase.FAILED})
# At most one deployment per service and environment may be in one of these (enforced by a unique index).
# A deployment awaiting approval, or the merge of its pull request, holds its environment too: a second deploy
# is refused, naming it.
ACTIVE_PHASES = frozenset({Phase.AWAITING_APPROVAL, Phase.AWAITING_MERGE, Phase.PROGRESSING, Phase.PAUSED})


class DeploymentKind(enum.StrEnum):
    DEPLOY = "deploy"  # `deploy`: what HEAD renders
    PROMOTE = "promote"  # `promote`: a release verified in the previous environment of the path
    ROLLBACK = "rollback"  # `rollback`: a revert commit to an earlier release, rolled out fast


class Strategy(enum.StrEnum):
    CANARY = "canary"
    BLUE_GREEN = "blueGreen"
    ROLLING = "rolling"


def _in(column: str, values: type[enum.StrEnum]) -> str:
    listed = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({listed})"


def _in_phases(column: str, phases: frozenset[Phase]) -> str:
    listed = ", ".join(f"'{phase.value}'" for phase in sorted(phases))
    return f"{column} IN ({listed})"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", Role), name="role"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(50), default=Role.VIEWER.value, server_default=Role.VIEWER.value)
    status: Mapped[str] = mapped_column(String(50), default="pending", server_default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", passive_deletes=True)


class AccessRequest(Base):
    __tablename__ = "access_requests"
    __table_args__ = (
        # One pending request per email, decided by the database when two arrive at once.
        Index(
            "uq_access_requests_pending_email",
            "email",
            unique=True,
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(255), index=True)
    full_name: Mapped[str] = mapped_column(String(255))
    organization: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(50), default="pending", server_default="pending")
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    reviewed_at: Mapped[datetime | None]
    review_note: Mapped[str | None] = mapped_column(Text)  # the reviewer's reason, e.g. for a denial

    reviewer: Mapped[User | None] = relationship()


class ApiToken(Base):
    """A REST API bearer token: only a hash of the secret is kept; `prefix` tells tokens apart for people."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")


class Release(Base):
    """What gets promoted unchanged: one service at one commit, one image, one set of rendered manifests.

    `image_ref` is the image as the manifests name it (`repo@sha256:…` once built, else `repo:tag`); it is
    part of the identity, so recording the same release twice finds the first row.
    """

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("service", "git_commit", "image_ref", "manifest_hash"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    service: Mapped[str] = mapped_column(String(253), index=True)
    git_commit: Mapped[str] = mapped_column(String(64))
    image_repository: Mapped[str] = mapped_column(String(512))
    image_ref: Mapped[str] = mapped_column(String(700))
    # active_history: the old value is loaded before a change, so the immutability check below can see it.
    image_digest: Mapped[str | None] = mapped_column(String(100), active_history=True)
    manifest_hash: Mapped[str] = mapped_column(String(128))
    values_hash: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    created_by: Mapped[str | None] = mapped_column(String(255))
    # When the release's commit was made (its committer date): where lead time for changes starts.
    committed_at: Mapped[datetime | None]

    deployments: Mapped[list[Deployment]] = relationship(back_populates="release")


class Deployment(Base):
    """One release rolling out to one environment (the seed's deployments table, grown for rollouts).

    `status` is the seed's lower-case column and mirrors `phase` (the store keeps them in step), so readers
    of the seed schema keep working. `cloud_provider`/`region` are 'multi' when an environment spans clusters.
    `last_event_seq` is the counter `append_event` bumps to number the audit trail without gaps or races.
    """

    __tablename__ = "deployments"
    __table_args__ = (
        CheckConstraint(_in("phase", Phase), name="phase"),
        CheckConstraint(_in("strategy", Strategy), name="strategy"),
        CheckConstraint(_in("kind", DeploymentKind), name="kind"),
        Index("ix_deployments_service_environment_created_at", "service", "environment", "created_at"),
        # One rollout at a time per service and environment, even with many workers on many machines.
        Index(
            "uq_deployments_active_per_environment",
            "service",
            "environment",
            unique=True,
            postgresql_where=text(_in_phases("phase", ACTIVE_PHASES)),
            sqlite_where=text(_in_phases("phase", ACTIVE_PHASES)),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(255))
    cloud_provider: Mapped[str] = mapped_column(String(50))
    region: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(50), default="pending", server_default="pending")
    config: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())

    release_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("releases.id", ondelete="RESTRICT"), index=True)
    service: Mapped[str] = mapped_column(String(253))
    environment: Mapped[str] = mapped_column(String(63))
    phase: Mapped[str] = mapped_column(
        String(20), default=Phase.PENDING.value, server_default=Phase.PENDING.value
    )
    current_step: Mapped[int] = mapped_column(default=0, server_default="0")
    strategy: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    last_event_seq: Mapped[int] = mapped_column(default=0, server_default="0")
    # The plan frozen when the deployment was created (strategy, analysis, waves, rendered manifests):
    # read once per run, never on the per-step path. About 33 KB of JSON for three clusters, so it is
    # deferred: loaded (with a SELECT of its own) only where `.plan` is read, not with every row that
    # `history`, `status`, the API's lists and each step's reads load.
    plan: Mapped[dict[str, Any] | None] = mapped_column(deferred=True)
    # Pause reasons, approvals, full promotion: small, read before every step.
    control: Mapped[dict[str, Any] | None]
    # The one engine driving the deployment: who, last heard from, and until when its claim holds.
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_heartbeat_at: Mapped[datetime | None]
    lease_expires_at: Mapped[datetime | None]
    # What kind of deployment this is, the one a rollback undoes, and the GitOps commit holding its desired
    # state (migration 0004).
    kind: Mapped[str] = mapped_column(
        String(20), default=DeploymentKind.DEPLOY.value, server_default=DeploymentKind.DEPLOY.value
    )
    undoes_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("deployments.id", ondelete="SET NULL"))
    gitops_commit: Mapped[str | None] = mapped_column(String(64))

    release: Mapped[Release] = relationship(back_populates="deployments", lazy="joined")
    user: Mapped[User | None] = relationship()
    clusters: Mapped[list[ClusterDeployment]] = relationship(
        back_populates="deployment", passive_deletes=True, order_by="ClusterDeployment.cluster"
    )


class ClusterDeployment(Base):
    """The state of one deployment in one cluster: its phase and the traffic split there."""

    __tablename__ = "cluster_deployments"
    __table_args__ = (
        UniqueConstraint("deployment_id", "cluster"),
        CheckConstraint(_in("phase", Phase), name="phase"),
        CheckConstraint("canary_weight BETWEEN 0 AND 100", name="canary_weight"),
        CheckConstraint("stable_weight BETWEEN 0 AND 100", name="stable_weight"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    deployment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    cluster: Mapped[str] = mapped_column(String(63))
    cloud: Mapped[str] = mapped_column(String(50))
    region: Mapped[str] = mapped_column(String(100))
    wave: Mapped[int | None]
    phase: Mapped[str] = mapped_column(
        String(20), default=Phase.PENDING.value, server_default=Phase.PENDING.value
    )
    canary_weight: Mapped[int] = mapped_column(default=0, server_default="0")
    stable_weight: Mapped[int] = mapped_column(default=100, server_default="100")
    message: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())

    deployment: Mapped[Deployment] = relationship(back_populates="clusters")


class DeploymentEvent(Base):
    """One line of a deployment's audit trail; `seq` numbers them 1, 2, 3… per deployment."""

    __tablename__ = "deployment_events"
    __table_args__ = (UniqueConstraint("deployment_id", "seq"),)

    # BIGINT on Postgres; SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    deployment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    seq: Mapped[int]
    type: Mapped[str] = mapped_column(String(50))
    step: Mapped[int | None]
    cluster: Mapped[str | None] = mapped_column(String(63))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None]
    actor: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # due at next_attempt_at (a claimed one is being sent)
    DELIVERED = "delivered"
    FAILED = "failed"  # every attempt failed; last_error says why


class NotificationDelivery(Base):
    """One phase change (an audit event) to be told to one destination: a Slack or webhook notification, or
    the GitHub deployment's statuses. The outbox the notifier works through (`notify/`), after the change
    was committed; unique per (event, destination) so several processes tailing the trail at once record
    each delivery once. `claimed_by`/`claimed_until` hold a row while one process sends it."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "destination"),
        CheckConstraint(_in("status", DeliveryStatus), name="status"),
        Index("ix_notification_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_notification_deliveries_deployment_id_destination", "deployment_id", "destination"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("deployment_events.id", ondelete="CASCADE"))
    deployment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    destination: Mapped[str] = mapped_column(String(120))  # "github", or "<type>:<name>" of a notification
    kind: Mapped[str] = mapped_column(String(20))  # slack, webhook, github
    trigger: Mapped[str] = mapped_column(String(40))  # on-rolled-back, … (github: the phase it reports)
    status: Mapped[str] = mapped_column(
        String(20), default=DeliveryStatus.PENDING.value, server_default=DeliveryStatus.PENDING.value
    )
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    delivered_at: Mapped[datetime | None]


class NotificationCursor(Base):
    """How far the notifier has read the audit trail (`deployment_events.id`); one row, `name` = 'events'.

    Migration 0006 starts it at the newest event, so history from before notifications existed is not
    announced. The cursor only ever moves forward (UPDATE … WHERE event_id < new)."""

    __tablename__ = "notification_cursor"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class GitHubDeployment(Base):
    """The GitHub deployment that mirrors one of ours: its id in the repository, and the last state sent
    (so a retried delivery sends only the statuses still missing, and `inactive` finds the one replaced)."""

    __tablename__ = "github_deployments"

    deployment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    repository: Mapped[str] = mapped_column(String(255))  # owner/name
    github_id: Mapped[int] = mapped_column(BigInteger())
    statuses_url: Mapped[str] = mapped_column(String(1000))
    last_state: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class DeliveryOutcome(enum.StrEnum):
    QUEUED = "queued"  # one or more rollout requests were recorded and queued
    IGNORED = "ignored"  # verified but nothing to do (unknown repository or service, another branch...)
    CANCELLED = "cancelled"  # a pull request closed unmerged: the deployment waiting on it was cancelled
    PING = "ping"


class WebhookDelivery(Base):
    """One verified webhook delivery, once: a redelivery carries the same id and finds this row.

    Only signed deliveries are recorded (a bad signature stores nothing); the body is not kept, only what
    was decided from it.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("source", "delivery_id"),
        CheckConstraint(_in("outcome", DeliveryOutcome), name="outcome"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    source: Mapped[str] = mapped_column(String(20))  # github | registry
    delivery_id: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(50))
    repository: Mapped[str | None] = mapped_column(String(512))
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class RequestStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for a worker (or for the service's environment to be free)
    DEPLOYING = "deploying"  # its deployment is recorded and being driven
    DEPLOYED = "deployed"  # its deployment finished, or waits for a person (the deployment says how)
    SUPERSEDED = "superseded"  # a newer request for the same service and environment came first
    FAILED = "failed"  # refused before any deployment was recorded (bad configuration, unknown commit)


class RolloutRequest(Base):
    """A rollout a trigger asked for (a push, a registry notification), until a worker turns it into a
    deployment. The id orders requests: of several queued for one service and environment, the newest wins.
    """

    __tablename__ = "rollout_requests"
    __table_args__ = (
        CheckConstraint(_in("status", RequestStatus), name="status"),
        Index("ix_rollout_requests_service_environment_status", "service", "environment", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="SET NULL"), index=True
    )
    service: Mapped[str] = mapped_column(String(253))
    environment: Mapped[str] = mapped_column(String(63))
    event: Mapped[str] = mapped_column(String(50))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    digest: Mapped[str | None] = mapped_column(String(100))
    built_repository: Mapped[str | None] = mapped_column(String(512))
    actor: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(
        String(20), default=RequestStatus.QUEUED.value, server_default=RequestStatus.QUEUED.value
    )
    deployment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("deployments.id", ondelete="SET NULL"))
    superseded_by: Mapped[int | None]
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())

    delivery: Mapped[WebhookDelivery | None] = relationship(lazy="joined")


class ImmutableRowError(OrchestratorError):
    """Something tried to change a row the store only ever appends."""


@event.listens_for(DeploymentEvent, "before_update")
def _refuse_event_update(mapper: Mapper[Any], connection: Any, target: DeploymentEvent) -> None:  # noqa: ARG001
    raise ImmutableRowError(
        f"deployment event {target.deployment_id}#{target.seq} belongs to the audit trail and cannot change"
    )


@event.listens_for(Release, "before_update")
def _refuse_release_update(mapper: Mapper[Any], connection: Any, target: Release) -> None:  # noqa: ARG001
    state = inspect(target)
    for attr in state.mapper.column_attrs:
        history = state.attrs[attr.key].history
        if not history.has_changes():
            continue
        # The one permitted change: the digest of an image not yet built when the release was recorded.
        if attr.key == "image_digest" and all(old is None for old in history.deleted):
            continue
        raise ImmutableRowError(
            f"release {target.id} of {target.service} is immutable; cannot change {attr.key!r}"
        )
