"""Pull-request mode: the AwaitingMerge phase (a deployment whose desired state is an open pull request),
which holds its environment like a running rollout; and a webhook delivery's `cancelled` outcome (a pull
request closed unmerged cancelled the deployment waiting on it).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported from the models (see 0001).
OLD_PHASES = (
    "'Pending', 'AwaitingApproval', 'Progressing', 'Paused', 'Succeeded', 'Aborted', 'RolledBack', 'Failed'"
)
NEW_PHASES = (
    "'Pending', 'AwaitingApproval', 'AwaitingMerge', 'Progressing', 'Paused', 'Succeeded', 'Aborted', "
    "'RolledBack', 'Failed'"
)
OLD_ACTIVE = "phase IN ('AwaitingApproval', 'Paused', 'Progressing')"
# Waiting for its pull request's merge, a deployment holds its environment: a second deploy is refused
# naming it, rather than two pull requests racing for one branch.
NEW_ACTIVE = "phase IN ('AwaitingApproval', 'AwaitingMerge', 'Paused', 'Progressing')"
ACTIVE_INDEX = "uq_deployments_active_per_environment"
OLD_OUTCOMES = "outcome IN ('queued', 'ignored', 'ping')"
NEW_OUTCOMES = "outcome IN ('queued', 'ignored', 'cancelled', 'ping')"


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


def _outcomes(outcomes: str) -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_constraint(op.f("ck_webhook_deliveries_outcome"), type_="check")
        batch.create_check_constraint(op.f("ck_webhook_deliveries_outcome"), sa.text(outcomes))


def upgrade() -> None:
    # The partial unique index goes first and comes back last: SQLite's batch mode rebuilds the table (see 0004).
    op.drop_index(ACTIVE_INDEX, table_name="deployments")
    _phases(NEW_PHASES)
    _active_index(NEW_ACTIVE)
    _outcomes(NEW_OUTCOMES)


def downgrade() -> None:
    # A pull request still open has touched nothing: the deployment is withdrawn, as an abort would.
    op.execute("UPDATE deployments SET phase = 'Aborted', status = 'aborted' WHERE phase = 'AwaitingMerge'")
    op.execute("UPDATE webhook_deliveries SET outcome = 'ignored' WHERE outcome = 'cancelled'")
    _outcomes(OLD_OUTCOMES)
    op.drop_index(ACTIVE_INDEX, table_name="deployments")
    _phases(OLD_PHASES)
    _active_index(OLD_ACTIVE)
