"""A deployment's frozen plan, its control state (pause reasons, approvals) and its driver's lease.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
COLUMNS = ("plan", "control", "lease_owner", "lease_heartbeat_at", "lease_expires_at")


def upgrade() -> None:
    # Nullable columns only: SQLite adds them with a plain ALTER TABLE, no table rebuild.
    op.add_column("deployments", sa.Column("plan", JSON, nullable=True))
    op.add_column("deployments", sa.Column("control", JSON, nullable=True))
    op.add_column("deployments", sa.Column("lease_owner", sa.String(255), nullable=True))
    op.add_column("deployments", sa.Column("lease_heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("deployments", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column)
