"""ledger_rejects: ledger rows the database refused, recorded instead of blocking the batch

Revision ID: 0003_ledger_rejects
Revises: 0006_users_teams
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_ledger_rejects"
down_revision = "0006_users_teams"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_rejects",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("key_id", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("row", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ledger_rejects")
