"""GitOps and approvals: the AwaitingApproval phase, a deployment's kind, what it undoes, its GitOps commit;
and when a release's commit was made (for lead time).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported from the models (see 0001).
OLD_PHASES = "'Pending', 'Progressing', 'Paused', 'Succeeded', 'Aborted', 'RolledBack', 'Failed'"
NEW_PHASES = "'Pending', 'AwaitingApproval', 'Progressing', 'Paused', 'Succeeded', 'Aborted', 'RolledBack', 'Failed'"
OLD_ACTIVE = "phase IN ('Paused', 'Progressing')"
# A deployment waiting for its approval holds its environment like a running one: a second deploy is refused
# naming it, rather than two releases queueing for one approver.
NEW_ACTIVE = "phase IN ('AwaitingApproval', 'Paused', 'Progressing')"
KINDS = "kind IN ('deploy', 'promote', 'rollback')"
ACTIVE_INDEX = "uq_deployments_active_per_environment"


def _phases(phases: str) -> None:
    for table in ("deployments", "cluster_deployments"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"ck_{table}_phase"), type_="check")
            batch.create_check_constraint(op.f(f"ck_{table}_phase"), sa.text(f"phase IN ({phases})"))


def _active_index(active: str) -> None:
    op.create_index(
        ACTIVE_INDEX,
        "deployments",
        ["service", "environment"],
        unique=True,
        postgresql_where=sa.text(active),
        sqlite_where=sa.text(active),
    )


def upgrade() -> None:
    # The partial unique index goes first and comes back last: SQLite's batch mode rebuilds the table, and
    # the index's WHERE clause is not something to trust to reflection.
    op.add_column("releases", sa.Column("committed_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_index(ACTIVE_INDEX, table_name="deployments")
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), server_default="deploy", nullable=False))
        batch.add_column(sa.Column("undoes_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("gitops_commit", sa.String(64), nullable=True))
        batch.create_check_constraint(op.f("ck_deployments_kind"), sa.text(KINDS))
        batch.create_foreign_key(
            op.f("fk_deployments_undoes_id_deployments"), "deployments", ["undoes_id"], ["id"], ondelete="SET NULL"
        )
    _phases(NEW_PHASES)
    _active_index(NEW_ACTIVE)


def downgrade() -> None:
    op.execute("UPDATE deployments SET phase = 'Pending' WHERE phase = 'AwaitingApproval'")
    op.drop_index(ACTIVE_INDEX, table_name="deployments")
    _phases(OLD_PHASES)
    with op.batch_alter_table("deployments") as batch:
        batch.drop_constraint(op.f("fk_deployments_undoes_id_deployments"), type_="foreignkey")
        batch.drop_constraint(op.f("ck_deployments_kind"), type_="check")
        batch.drop_column("gitops_commit")
        batch.drop_column("undoes_id")
        batch.drop_column("kind")
    _active_index(OLD_ACTIVE)
    with op.batch_alter_table("releases") as batch:
        batch.drop_column("committed_at")
