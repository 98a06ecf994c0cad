"""Initial schema: users, access requests, API tokens, releases, deployments, cluster state, audit events.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out here rather than imported from the models: a migration must keep meaning what it meant
# when it was written, whatever the models become later.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
PHASES = "'Pending', 'Progressing', 'Paused', 'Succeeded', 'Aborted', 'RolledBack', 'Failed'"
ACTIVE_PHASES = "phase IN ('Paused', 'Progressing')"


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    if nullable:
        return sa.Column(name, sa.DateTime(timezone=True), nullable=True)
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(50), server_default="viewer", nullable=False),
        sa.Column("status", sa.String(50), server_default="pending", nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
        sa.CheckConstraint("role IN ('admin', 'deployer', 'viewer')", name=op.f("ck_users_role")),
    )

    op.create_table(
        "access_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("full_name", sa.String(255), nullable=False),
        sa.Column("organization", sa.String(255), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status", sa.String(50), server_default="pending", nullable=False),
        sa.Column("reviewed_by", sa.Uuid(), nullable=True),
        _timestamp("created_at"),
        _timestamp("reviewed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_access_requests"),
        sa.ForeignKeyConstraint(
            ["reviewed_by"], ["users.id"], name="fk_access_requests_reviewed_by_users", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_access_requests_email", "access_requests", ["email"])

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("token_hash", sa.String(128), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        _timestamp("created_at"),
        _timestamp("expires_at", nullable=True),
        _timestamp("last_used_at", nullable=True),
        _timestamp("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_api_tokens_user_id_users", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])

    op.create_table(
        "releases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("service", sa.String(253), nullable=False),
        sa.Column("git_commit", sa.String(64), nullable=False),
        sa.Column("image_repository", sa.String(512), nullable=False),
        sa.Column("image_ref", sa.String(700), nullable=False),
        sa.Column("image_digest", sa.String(100), nullable=True),
        sa.Column("manifest_hash", sa.String(128), nullable=False),
        sa.Column("values_hash", sa.String(128), nullable=True),
        _timestamp("created_at"),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_releases"),
        sa.UniqueConstraint(
            "service",
            "git_commit",
            "image_ref",
            "manifest_hash",
            name="uq_releases_service_git_commit_image_ref_manifest_hash",
        ),
    )
    op.create_index("ix_releases_service", "releases", ["service"])

    op.create_table(
        "deployments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("cloud_provider", sa.String(50), nullable=False),
        sa.Column("region", sa.String(100), nullable=False),
        sa.Column("status", sa.String(50), server_default="pending", nullable=False),
        sa.Column("config", JSON, nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("release_id", sa.Uuid(), nullable=False),
        sa.Column("service", sa.String(253), nullable=False),
        sa.Column("environment", sa.String(63), nullable=False),
        sa.Column("phase", sa.String(20), server_default="Pending", nullable=False),
        sa.Column("current_step", sa.Integer(), server_default="0", nullable=False),
        sa.Column("strategy", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        _timestamp("started_at", nullable=True),
        _timestamp("finished_at", nullable=True),
        sa.Column("last_event_seq", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deployments"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_deployments_user_id_users", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["release_id"], ["releases.id"], name="fk_deployments_release_id_releases", ondelete="RESTRICT"
        ),
        sa.CheckConstraint(f"phase IN ({PHASES})", name=op.f("ck_deployments_phase")),
        sa.CheckConstraint(
            "strategy IN ('canary', 'blueGreen', 'rolling')", name=op.f("ck_deployments_strategy")
        ),
    )
    op.create_index("ix_deployments_release_id", "deployments", ["release_id"])
    op.create_index(
        "ix_deployments_service_environment_created_at",
        "deployments",
        ["service", "environment", "created_at"],
    )
    op.create_index(
        "uq_deployments_active_per_environment",
        "deployments",
        ["service", "environment"],
        unique=True,
        postgresql_where=sa.text(ACTIVE_PHASES),
        sqlite_where=sa.text(ACTIVE_PHASES),
    )

    op.create_table(
        "cluster_deployments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("cluster", sa.String(63), nullable=False),
        sa.Column("cloud", sa.String(50), nullable=False),
        sa.Column("region", sa.String(100), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=True),
        sa.Column("phase", sa.String(20), server_default="Pending", nullable=False),
        sa.Column("canary_weight", sa.Integer(), server_default="0", nullable=False),
        sa.Column("stable_weight", sa.Integer(), server_default="100", nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_cluster_deployments"),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name="fk_cluster_deployments_deployment_id_deployments",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("deployment_id", "cluster", name="uq_cluster_deployments_deployment_id_cluster"),
        sa.CheckConstraint(f"phase IN ({PHASES})", name=op.f("ck_cluster_deployments_phase")),
        sa.CheckConstraint(
            "canary_weight BETWEEN 0 AND 100", name=op.f("ck_cluster_deployments_canary_weight")
        ),
        sa.CheckConstraint(
            "stable_weight BETWEEN 0 AND 100", name=op.f("ck_cluster_deployments_stable_weight")
        ),
    )

    op.create_table(
        "deployment_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(50), nullable=False),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("cluster", sa.String(63), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", JSON, nullable=True),
        sa.Column("actor", sa.String(255), nullable=True),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_deployment_events"),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name="fk_deployment_events_deployment_id_deployments",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("deployment_id", "seq", name="uq_deployment_events_deployment_id_seq"),
    )


def downgrade() -> None:
    op.drop_table("deployment_events")
    op.drop_table("cluster_deployments")
    op.drop_index("uq_deployments_active_per_environment", table_name="deployments")
    op.drop_index("ix_deployments_service_environment_created_at", table_name="deployments")
    op.drop_index("ix_deployments_release_id", table_name="deployments")
    op.drop_table("deployments")
    op.drop_index("ix_releases_service", table_name="releases")
    op.drop_table("releases")
    op.drop_index("ix_api_tokens_user_id", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index("ix_access_requests_email", table_name="access_requests")
    op.drop_table("access_requests")
    op.drop_table("users")
