"""Identity: the reviewer's note on an access request, and one pending request per email.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
# Chained on 0001 on the branch where 0002 (deployments columns) does not exist yet; set to "0002" when
# both are merged.
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "status = 'pending'"


def upgrade() -> None:
    with op.batch_alter_table("access_requests") as batch:
        batch.add_column(sa.Column("review_note", sa.Text(), nullable=True))
    op.create_index(
        "uq_access_requests_pending_email",
        "access_requests",
        ["email"],
        unique=True,
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )


def downgrade() -> None:
    op.drop_index("uq_access_requests_pending_email", table_name="access_requests")
    with op.batch_alter_table("access_requests") as batch:
        batch.drop_column("review_note")
