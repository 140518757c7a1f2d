"""users and teams: budgets and model access above the key

Revision ID: 0006_users_teams
Revises: 0002

Existing keys get no user and no team (they keep working exactly as before); existing ledger rows get none
either. usage_daily gains user_id / team_id in its primary key (0 for none), so it is rebuilt: a new table,
every row copied with 0, the old one dropped.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_users_teams"
down_revision = "0002"
branch_labels = None
depends_on = None

SUMS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens",
        "cost_micros", "cache_savings_micros")
OLD_PK = ("day_ms", "key_id", "public_model", "provider", "api")


def _account_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("budget_micros", sa.BigInteger, nullable=True),
        sa.Column("budget_period", sa.String(16), nullable=False, server_default="none"),
        sa.Column("period_start_ms", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("spent_micros", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("reserved_micros", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("total_spent_micros", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("allowed_models", sa.Text, nullable=True),
        sa.Column("rpm", sa.Integer, nullable=True),
        sa.Column("tpm", sa.Integer, nullable=True),
        sa.Column("metadata", sa.Text, nullable=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_ms", sa.BigInteger, nullable=False, server_default="0"),
    ]


def _usage_daily(name: str) -> None:
    op.create_table(
        name,
        sa.Column("day_ms", sa.BigInteger, nullable=False),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False, server_default="0"),
        sa.Column("team_id", sa.Integer, nullable=False, server_default="0"),
        sa.Column("public_model", sa.String(200), nullable=False, server_default=""),
        sa.Column("provider", sa.String(64), nullable=False, server_default=""),
        sa.Column("api", sa.String(24), nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("errors", sa.BigInteger, nullable=False, server_default="0"),
        *[sa.Column(c, sa.BigInteger, nullable=False, server_default="0") for c in SUMS],
        sa.PrimaryKeyConstraint("day_ms", "key_id", "user_id", "team_id", "public_model", "provider", "api",
                                name="pk_usage_daily"),
    )


def upgrade() -> None:
    op.create_table("teams", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("name", sa.String(200), nullable=False, unique=True), *_account_columns())
    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("name", sa.String(200), nullable=False),
                    sa.Column("email", sa.String(320), nullable=True, unique=True),
                    sa.Column("external_id", sa.String(255), nullable=True, unique=True),
                    sa.Column("default_team_id", sa.Integer, nullable=True), *_account_columns())
    op.create_table("team_members", sa.Column("team_id", sa.Integer, nullable=False),
                    sa.Column("user_id", sa.Integer, nullable=False),
                    sa.Column("created_ms", sa.BigInteger, nullable=False, server_default="0"),
                    sa.PrimaryKeyConstraint("team_id", "user_id"))
    op.create_index("ix_team_members_user", "team_members", ["user_id"])
    for table in ("keys", "ledger"):
        op.add_column(table, sa.Column("user_id", sa.Integer, nullable=True))
        op.add_column(table, sa.Column("team_id", sa.Integer, nullable=True))
    op.add_column("reservations", sa.Column("level", sa.String(8), nullable=False, server_default="key"))
    op.create_index("ix_keys_user", "keys", ["user_id"])
    op.create_index("ix_keys_team", "keys", ["team_id"])
    op.create_index("ix_ledger_user_ts", "ledger", ["user_id", "ts_ms"])
    op.create_index("ix_ledger_team_ts", "ledger", ["team_id", "ts_ms"])

    _usage_daily("usage_daily_new")
    cols = ", ".join((*OLD_PK, "requests", "errors", *SUMS))
    op.execute(f"INSERT INTO usage_daily_new ({cols}, user_id, team_id) SELECT {cols}, 0, 0 FROM usage_daily")
    op.drop_index("ix_usage_daily_key_day", "usage_daily")
    op.drop_table("usage_daily")
    op.rename_table("usage_daily_new", "usage_daily")
    op.create_index("ix_usage_daily_key_day", "usage_daily", ["key_id", "day_ms"])
    op.create_index("ix_usage_daily_team_day", "usage_daily", ["team_id", "day_ms"])
    op.create_index("ix_usage_daily_user_day", "usage_daily", ["user_id", "day_ms"])


def downgrade() -> None:
    op.create_table(
        "usage_daily_old",
        sa.Column("day_ms", sa.BigInteger, nullable=False), sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("public_model", sa.String(200), nullable=False, server_default=""),
        sa.Column("provider", sa.String(64), nullable=False, server_default=""),
        sa.Column("api", sa.String(24), nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("errors", sa.BigInteger, nullable=False, server_default="0"),
        *[sa.Column(c, sa.BigInteger, nullable=False, server_default="0") for c in SUMS],
        sa.PrimaryKeyConstraint(*OLD_PK),
    )
    sums = ", ".join(f"SUM({c})" for c in ("requests", "errors", *SUMS))
    op.execute(f"INSERT INTO usage_daily_old ({', '.join((*OLD_PK, 'requests', 'errors', *SUMS))}) "
               f"SELECT {', '.join(OLD_PK)}, {sums} FROM usage_daily GROUP BY {', '.join(OLD_PK)}")
    for ix in ("ix_usage_daily_key_day", "ix_usage_daily_team_day", "ix_usage_daily_user_day"):
        op.drop_index(ix, "usage_daily")
    op.drop_table("usage_daily")
    op.rename_table("usage_daily_old", "usage_daily")
    op.create_index("ix_usage_daily_key_day", "usage_daily", ["key_id", "day_ms"])
    with op.batch_alter_table("reservations") as b:
        b.drop_column("level")
    for table, ixs in (("keys", ("ix_keys_user", "ix_keys_team")), ("ledger", ("ix_ledger_user_ts", "ix_ledger_team_ts"))):
        for ix in ixs:
            op.drop_index(ix, table)
        with op.batch_alter_table(table) as b:
            b.drop_column("team_id")
            b.drop_column("user_id")
    op.drop_index("ix_team_members_user", "team_members")
    for table in ("team_members", "users", "teams"):
        op.drop_table(table)
