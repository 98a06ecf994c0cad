"""Webhooks and workers: verified deliveries (each recorded once) and the rollout requests they queue.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported from the models (see 0001).
OUTCOMES = "outcome IN ('queued', 'ignored', 'ping')"
STATUSES = "status IN ('queued', 'deploying', 'deployed', 'superseded', 'failed')"


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        _id(),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("event", sa.String(50), nullable=False),
        sa.Column("repository", sa.String(512), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(OUTCOMES, name=op.f("ck_webhook_deliveries_outcome")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        # A redelivery carries the same id: the second INSERT loses here, whatever the number of servers.
        sa.UniqueConstraint("source", "delivery_id", name=op.f("uq_webhook_deliveries_source_delivery_id")),
    )
    op.create_table(
        "rollout_requests",
        _id(),
        sa.Column("delivery_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("service", sa.String(253), nullable=False),
        sa.Column("environment", sa.String(63), nullable=False),
        sa.Column("event", sa.String(50), nullable=False),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("digest", sa.String(100), nullable=True),
        sa.Column("built_repository", sa.String(512), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("status", sa.String(20), server_default="queued", nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=True),
        sa.Column("superseded_by", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(STATUSES, name=op.f("ck_rollout_requests_status")),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_rollout_requests_delivery_id_webhook_deliveries"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_rollout_requests_deployment_id_deployments"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_requests")),
    )
    op.create_index(
        op.f("ix_rollout_requests_delivery_id"), "rollout_requests", ["delivery_id"], unique=False
    )
    op.create_index(
        "ix_rollout_requests_service_environment_status",
        "rollout_requests",
        ["service", "environment", "status"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_rollout_requests_service_environment_status", table_name="rollout_requests")
    op.drop_index(op.f("ix_rollout_requests_delivery_id"), table_name="rollout_requests")
    op.drop_table("rollout_requests")
    op.drop_table("webhook_deliveries")
