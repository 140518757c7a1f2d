"""audit trail (append-only), alert events and deliveries, shared circuit state

Revision ID: 0005_audit_alerts
Revises: 0004_response_store
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_audit_alerts"
down_revision = "0004_response_store"
branch_labels = None
depends_on = None

# The tables as this revision creates them (a revision describes its own step, not today's schema.py).
_md = sa.MetaData()
_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
TABLES = (
    sa.Table("audit_log", _md,
             sa.Column("id", _ID, primary_key=True, autoincrement=True),
             sa.Column("ts_ms", sa.BigInteger, nullable=False),
             sa.Column("actor", sa.String(200), nullable=False),
             sa.Column("action", sa.String(40), nullable=False),
             sa.Column("target_type", sa.String(20), nullable=True),
             sa.Column("target_id", sa.String(64), nullable=True),
             sa.Column("target_name", sa.String(200), nullable=True),
             sa.Column("source", sa.String(100), nullable=True),
             sa.Column("changes", sa.Text, nullable=True),
             sa.Column("request_id", sa.String(64), nullable=True),
             sa.Index("ix_audit_ts", "ts_ms"),
             sa.Index("ix_audit_target", "target_type", "target_id")),
    sa.Table("alert_events", _md,
             sa.Column("id", _ID, primary_key=True, autoincrement=True),
             sa.Column("uid", sa.String(40), nullable=False, unique=True),
             sa.Column("dedup_key", sa.String(200), nullable=False, unique=True),
             sa.Column("kind", sa.String(40), nullable=False),
             sa.Column("created_ms", sa.BigInteger, nullable=False),
             sa.Column("payload", sa.Text, nullable=False),
             sa.Index("ix_alert_events_created", "created_ms")),
    sa.Table("alert_deliveries", _md,
             sa.Column("id", _ID, primary_key=True, autoincrement=True),
             sa.Column("event_id", sa.BigInteger, nullable=False),
             sa.Column("url", sa.String(2000), nullable=False),
             sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
             sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
             sa.Column("next_attempt_ms", sa.BigInteger, nullable=False, server_default="0"),
             sa.Column("claimed_until_ms", sa.BigInteger, nullable=False, server_default="0"),
             sa.Column("delivered_ms", sa.BigInteger, nullable=True),
             sa.Column("last_status", sa.Integer, nullable=True),
             sa.Column("last_error", sa.String(300), nullable=True),
             sa.Index("ix_alert_deliveries_due", "status", "next_attempt_ms"),
             sa.Index("ix_alert_deliveries_event", "event_id")),
    sa.Table("circuit_state", _md,
             sa.Column("deployment", sa.String(300), primary_key=True),
             sa.Column("state", sa.String(8), nullable=False),
             sa.Column("changed_ms", sa.BigInteger, nullable=False)),
)

# The audit trail refuses changes in the database itself, not only in the code that writes it.
PG = [
    "CREATE OR REPLACE FUNCTION orgate_audit_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END; $$ LANGUAGE plpgsql",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION orgate_audit_append_only()",
]
SQLITE = [
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
]


def upgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:
        table.create(bind, checkfirst=True)
    for stmt in PG if bind.dialect.name == "postgresql" else SQLITE:
        op.execute(stmt)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS orgate_audit_append_only()")
    for table in reversed(TABLES):
        table.drop(bind, checkfirst=True)
