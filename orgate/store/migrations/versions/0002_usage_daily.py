"""usage_daily rollup, backfilled from the ledger

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SUMS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens",
        "cost_micros", "cache_savings_micros")
DAY_MS = 86_400_000


def upgrade() -> None:
    op.create_table(
        "usage_daily",
        sa.Column("day_ms", sa.BigInteger, nullable=False),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("public_model", sa.String(200), nullable=False, server_default=""),
        sa.Column("provider", sa.String(64), nullable=False, server_default=""),
        sa.Column("api", sa.String(24), nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("errors", sa.BigInteger, nullable=False, server_default="0"),
        *[sa.Column(c, sa.BigInteger, nullable=False, server_default="0") for c in SUMS],
        sa.PrimaryKeyConstraint("day_ms", "key_id", "public_model", "provider", "api"),
    )
    op.create_index("ix_usage_daily_key_day", "usage_daily", ["key_id", "day_ms"])
    sums = ", ".join(f"SUM({c})" for c in SUMS)
    op.execute(
        f"INSERT INTO usage_daily (day_ms, key_id, public_model, provider, api, requests, errors, {', '.join(SUMS)}) "
        f"SELECT (ts_ms / {DAY_MS}) * {DAY_MS}, key_id, COALESCE(public_model, ''), COALESCE(provider, ''), api, "
        f"COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), {sums} FROM ledger WHERE key_id IS NOT NULL "
        f"GROUP BY (ts_ms / {DAY_MS}) * {DAY_MS}, key_id, COALESCE(public_model, ''), COALESCE(provider, ''), api"
    )


def downgrade() -> None:
    op.drop_index("ix_usage_daily_key_day", "usage_daily")
    op.drop_table("usage_daily")
