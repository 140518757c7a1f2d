"""Migration 0008: the ledger's user and team indexes are partial (rows without a user or team are not in
them) and still serve the per-person and per-team queries, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from alembic import command

from orgate.store.db import _alembic_config, make_engine, upgrade


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request):
    if request.param == "sqlite":
        yield f"sqlite:///{Path(tempfile.mkdtemp()) / 'ix.db'}"
    else:
        yield request.getfixturevalue("pg_url")


async def _fetch(url: str, *sql: str) -> list[list[tuple]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            out = []
            for q in sql:
                result = await conn.exec_driver_sql(q)
                out.append(list(result.all()) if result.returns_rows else [])
            return out
    finally:
        await engine.dispose()


def _definition(url: str, name: str) -> str:
    if url.startswith("sqlite"):
        rows = asyncio.run(_fetch(url, f"SELECT sql FROM sqlite_master WHERE name = '{name}'"))[0]
    else:
        rows = asyncio.run(_fetch(url, f"SELECT indexdef FROM pg_indexes WHERE indexname = '{name}'"))[0]
    return rows[0][0]


def _plan(url: str, column: str) -> str:
    query = f"SELECT id FROM ledger WHERE {column} = 7 AND ts_ms >= 0"
    if url.startswith("sqlite"):
        rows = asyncio.run(_fetch(url, f"EXPLAIN QUERY PLAN {query}"))[0]
        return " ".join(str(r[-1]) for r in rows)
    # A tiny table would be scanned whatever its indexes: ask the planner for its index path.
    rows = asyncio.run(_fetch(url, "SET enable_seqscan = off", f"EXPLAIN {query}"))[1]
    return " ".join(r[0] for r in rows)


@pytest.mark.parametrize("column", ["user_id", "team_id"])
def test_user_and_team_indexes_are_partial_and_used(db_url: str, column: str) -> None:
    upgrade(db_url)
    name = f"ix_ledger_{column.split('_')[0]}_ts"
    assert f"{column} IS NOT NULL" in _definition(db_url, name).replace("(", "").replace(")", "")
    assert name in _plan(db_url, column)


def test_downgrade_restores_full_indexes_and_upgrade_makes_them_partial_again() -> None:
    url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'ix.db'}"
    upgrade(url)
    command.downgrade(_alembic_config(url), "0005_audit_alerts")
    assert "WHERE" not in _definition(url, "ix_ledger_user_ts")
    upgrade(url)
    assert "user_id IS NOT NULL" in _definition(url, "ix_ledger_user_ts")
