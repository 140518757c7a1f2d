"""The one SQL schema (SQLAlchemy Core), shared by SQLite and PostgreSQL; Alembic migrations create it.

Money columns are BigInteger micro-USD. Timestamps are integer milliseconds since the epoch (UTC), which
compare and index the same way on both databases and never meet a timezone.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

keys = sa.Table(
    "keys",
    metadata,
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
    sa.Column("user_id", sa.Integer, nullable=True),  # the person the key belongs to; NULL: nobody
    sa.Column("team_id", sa.Integer, nullable=True),  # the team the key charges; NULL: none
    sa.Index("ix_keys_user", "user_id"),
    sa.Index("ix_keys_team", "team_id"),
)


def _account_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    """What users and teams share with keys: status, a budget held like a key's, allowlist, limits."""
    return [
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),  # active|disabled
        sa.Column("budget_micros", sa.BigInteger, nullable=True),
        sa.Column("budget_period", sa.String(16), nullable=False, server_default="none"),
        sa.Column("period_start_ms", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("spent_micros", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("reserved_micros", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("total_spent_micros", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("allowed_models", sa.Text, nullable=True),  # JSON list; NULL: every model
        sa.Column("rpm", sa.Integer, nullable=True),
        sa.Column("tpm", sa.Integer, nullable=True),
        sa.Column("metadata", sa.Text, nullable=True),  # JSON object, the operator's own labels
        sa.Column("created_ms", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_ms", sa.BigInteger, nullable=False, server_default="0"),
    ]


teams = sa.Table(
    "teams",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    *_account_columns(),
)

# People. `external_id` is the subject an identity provider knows them by (single sign-on), when there is one.
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(320), nullable=True, unique=True),
    sa.Column("external_id", sa.String(255), nullable=True, unique=True),
    sa.Column("default_team_id", sa.Integer, nullable=True),
    *_account_columns(),
)

team_members = sa.Table(
    "team_members",
    metadata,
    sa.Column("team_id", sa.Integer, nullable=False),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False, server_default="0"),
    sa.PrimaryKeyConstraint("team_id", "user_id"),
    sa.Index("ix_team_members_user", "user_id"),
)

# Budget held by requests in flight. A row outlives its instance only until expires_ms: the sweeper of any
# instance releases it then, so a crashed process never leaks budget forever.
reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("key_id", sa.Integer, nullable=False),  # the id of the key, user or team, by `level`
    sa.Column("instance_id", sa.String(40), nullable=False),
    sa.Column("level", sa.String(8), nullable=False, server_default="key"),  # key | user | team
    sa.Column("amount_micros", sa.BigInteger, nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
    sa.Index("ix_reservations_expires", "expires_ms"),
    sa.Index("ix_reservations_instance", "instance_id"),
)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("ts_ms", sa.BigInteger, nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("key_id", sa.Integer, nullable=True),
    sa.Column("user_id", sa.Integer, nullable=True),  # the key's user and team when the request ran
    sa.Column("team_id", sa.Integer, nullable=True),
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
    # Partial in the database (WHERE user_id / team_id IS NOT NULL): a row without a user or team is not
    # indexed (migration 0008 says why). The tables are made by the migrations, never from here, and the
    # `postgresql_where` argument would load the PostgreSQL dialect at start on SQLite.
    sa.Index("ix_ledger_user_ts", "user_id", "ts_ms"),
    sa.Index("ix_ledger_team_ts", "team_id", "ts_ms"),
)


# Per-day totals by (key, user, team, model, provider, api); user_id / team_id 0 when the key had none, kept by the ledger writer in the same transaction as the
# rows it adds. Console and /usage aggregates over whole days read this instead of scanning a million
# ledger rows (an overview went from ~6 s to milliseconds).
usage_daily = sa.Table(
    "usage_daily",
    metadata,
    sa.Column("day_ms", sa.BigInteger, nullable=False),
    sa.Column("key_id", sa.Integer, nullable=False),
    sa.Column("user_id", sa.Integer, nullable=False, server_default="0"),
    sa.Column("team_id", sa.Integer, nullable=False, server_default="0"),
    sa.Column("public_model", sa.String(200), nullable=False, server_default=""),
    sa.Column("provider", sa.String(64), nullable=False, server_default=""),
    sa.Column("api", sa.String(24), nullable=False),
    sa.Column("requests", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("errors", sa.BigInteger, nullable=False, server_default="0"),
    *[sa.Column(c, sa.BigInteger, nullable=False, server_default="0") for c in (
        "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens",
        "cost_micros", "cache_savings_micros")],
    sa.PrimaryKeyConstraint("day_ms", "key_id", "user_id", "team_id", "public_model", "provider", "api"),
    sa.Index("ix_usage_daily_key_day", "key_id", "day_ms"),
    sa.Index("ix_usage_daily_team_day", "team_id", "day_ms"),
    sa.Index("ix_usage_daily_user_day", "user_id", "day_ms"),
)


# Ledger rows the database refused even after fitting (see store/writer.py): kept as JSON with the error,
# so a row that cannot be stored is recorded as failed instead of blocking every row after it.
ledger_rejects = sa.Table(
    "ledger_rejects",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("ts_ms", sa.BigInteger, nullable=False),  # when it was rejected
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Column("key_id", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("row", sa.Text, nullable=False),  # the ledger row as JSON
)


# Responses kept for `previous_response_id` (opt-in: response_store.enabled; server/response_store.py): the
# whole conversation up to and including a response, readable only with the key that created it.
response_store = sa.Table(
    "response_store",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # the response id the client got ("resp_...")
    sa.Column("key_id", sa.Integer, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
    sa.Column("items_json", sa.Text, nullable=False),  # JSON list of Responses items: input then output
    sa.Index("ix_response_store_expires", "expires_ms"),
)


# Admin actions, append-only (triggers refuse UPDATE and DELETE): who did what to which key, from where,
# and the changed fields before and after (never a key or its hash).
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("ts_ms", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),  # console user, API token name, or cli
    sa.Column("action", sa.String(40), nullable=False),  # login, login_failed, key.create, key.update, ...
    sa.Column("target_type", sa.String(20), nullable=True),
    sa.Column("target_id", sa.String(64), nullable=True),
    sa.Column("target_name", sa.String(200), nullable=True),
    sa.Column("source", sa.String(100), nullable=True),  # client address
    sa.Column("changes", sa.Text, nullable=True),  # JSON {field: {"before": x, "after": y}}
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Index("ix_audit_ts", "ts_ms"),
    sa.Index("ix_audit_target", "target_type", "target_id"),
)

# One row per alert event; `dedup_key` makes "once per crossing per period" hold across instances: whoever
# inserts first sends, the others' inserts do nothing.
alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("uid", sa.String(40), nullable=False, unique=True),  # the id receivers see (idempotency)
    sa.Column("dedup_key", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # the JSON body sent
    sa.Index("ix_alert_events_created", "created_ms"),
)

# One row per (event, webhook): the delivery record and the outbox the senders claim from.
alert_deliveries = sa.Table(
    "alert_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),  # pending|delivered|failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_ms", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("claimed_until_ms", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("delivered_ms", sa.BigInteger, nullable=True),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(300), nullable=True),
    sa.Index("ix_alert_deliveries_due", "status", "next_attempt_ms"),
    sa.Index("ix_alert_deliveries_event", "event_id"),
)

# The circuit state the instances agree on, so an open or close is announced once, not once per instance.
circuit_state = sa.Table(
    "circuit_state",
    metadata,
    sa.Column("deployment", sa.String(300), primary_key=True),
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("changed_ms", sa.BigInteger, nullable=False),
)
