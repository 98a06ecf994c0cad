"""Notifications: the outbox of deliveries (Slack, webhooks, GitHub statuses), the notifier's cursor on
the audit trail, and the GitHub deployment that mirrors each of ours.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
# Chained on 0004 while 0005 (webhook deliveries, another branch) is not merged; "0005" once it is.
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported from the models (see 0001).
STATUSES = "status IN ('pending', 'delivered', 'failed')"


def upgrade() -> None:
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("destination", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("trigger", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(255), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(STATUSES, name=op.f("ck_notification_deliveries_status")),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["deployment_events.id"],
            name=op.f("fk_notification_deliveries_event_id_deployment_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_notification_deliveries_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_deliveries")),
        sa.UniqueConstraint(
            "event_id", "destination", name=op.f("uq_notification_deliveries_event_id_destination")
        ),
    )
    op.create_index(
        "ix_notification_deliveries_status_next_attempt_at",
        "notification_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "ix_notification_deliveries_deployment_id_destination",
        "notification_deliveries",
        ["deployment_id", "destination"],
    )
    cursor = op.create_table(
        "notification_cursor",
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_notification_cursor")),
    )
    # The notifier starts at the newest event: what happened before notifications existed is not announced.
    newest = op.get_bind().execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM deployment_events")).scalar_one()
    op.bulk_insert(cursor, [{"name": "events", "event_id": int(newest)}])
    op.create_table(
        "github_deployments",
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("github_id", sa.BigInteger(), nullable=False),
        sa.Column("statuses_url", sa.String(1000), nullable=False),
        sa.Column("last_state", sa.String(20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_github_deployments_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("deployment_id", name=op.f("pk_github_deployments")),
    )


def downgrade() -> None:
    op.drop_table("github_deployments")
    op.drop_table("notification_cursor")
    op.drop_index("ix_notification_deliveries_deployment_id_destination", table_name="notification_deliveries")
    op.drop_index("ix_notification_deliveries_status_next_attempt_at", table_name="notification_deliveries")
    op.drop_table("notification_deliveries")
