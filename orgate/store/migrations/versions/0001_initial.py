"""initial schema: keys, reservations, ledger

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

# The three tables exactly as this revision created them. (This file once copied them from schema.py, so a
# column added there later appeared here too, and the revision that adds it then failed on a fresh database:
# a revision must describe its own step, not today's schema.)
_md = sa.MetaData()

keys = sa.Table(
    "keys",
    _md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(32), nullable=False),  # visible start of the key, for lists
    sa.Column("hash", sa.String(64), nullable=False, unique=True),  # sha256 hex of the whole key
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),  # active|disabled|deleted
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=True),
    sa.Column("budget_micros", sa.BigInteger, nullable=True),  # NULL: no budget cap
    sa.Column("budget_period", sa.String(16), nullable=False, server_default="none"),
    sa.Column("period_start_ms", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("spent_micros", sa.BigInteger, nullable=False, server_default="0"),  # in the current period
    sa.Column("reserved_micros", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("total_spent_micros", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("allowed_models", sa.Text, nullable=True),  # JSON list; NULL: every model
    sa.Column("rpm", sa.Integer, nullable=True),
    sa.Column("tpm", sa.Integer, nullable=True),
    sa.Column("max_concurrency", sa.Integer, nullable=True),
    sa.Column("updated_ms", sa.BigInteger, nullable=False, server_default="0"),
)

# Budget held by requests in flight. A row outlives its instance only until expires_ms: the sweeper of any
# instance releases it then, so a crashed process never leaks budget forever.
reservations = sa.Table(
    "reservations",
    _md,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("key_id", sa.Integer, nullable=False),
    sa.Column("instance_id", sa.String(40), nullable=False),
    sa.Column("amount_micros", sa.BigInteger, nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
    sa.Index("ix_reservations_expires", "expires_ms"),
    sa.Index("ix_reservations_instance", "instance_id"),
)

ledger = sa.Table(
    "ledger",
    _md,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("ts_ms", sa.BigInteger, nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("key_id", sa.Integer, nullable=True),
    sa.Column("api", sa.String(24), nullable=False),  # anthropic | openai-chat | openai-responses
    sa.Column("endpoint", sa.String(40), nullable=False, server_default="messages"),
    sa.Column("model", sa.String(200), nullable=True),  # as the client asked
    sa.Column("public_model", sa.String(200), nullable=True),  # the catalog model it billed as
    sa.Column("provider", sa.String(64), nullable=True),
    sa.Column("upstream_model", sa.String(200), nullable=True),
    sa.Column("stream", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("error_type", sa.String(64), nullable=True),
    sa.Column("input_tokens", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("output_tokens", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("cache_read_tokens", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("cache_write_5m_tokens", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("cache_write_1h_tokens", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("cost_micros", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("cache_savings_micros", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("latency_ms", sa.Integer, nullable=True),
    sa.Column("ttft_ms", sa.Integer, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
    sa.Column("attempt_log", sa.Text, nullable=True),  # JSON list of failed attempts
    sa.Column("disconnected", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_ledger_key_ts", "key_id", "ts_ms"),
    sa.Index("ix_ledger_ts", "ts_ms"),
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in (keys, reservations, ledger):
        table.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for table in (ledger, reservations, keys):
        table.drop(bind, checkfirst=True)
