"""Revision 0006_users_teams upgrades a database at the previous head, with data in it, in place."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from orgate.governance.keys import hash_key
from orgate.governance.leases import Release
from orgate.store.budget_repo import BudgetRepo
from orgate.store.db import _alembic_config, make_engine
from orgate.store.keys_repo import KeysRepo

PREVIOUS_HEAD = "0002"


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request):
    if request.param == "sqlite":
        yield f"sqlite:///{Path(tempfile.mkdtemp()) / 'upgrade.db'}"
        return
    from tests import pg

    if not pg.available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    url = pg.create_database()
    yield url
    pg.drop_database(url)


def _rows(url: str, sql: str) -> list[dict]:
    async def go():
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                return [dict(r._mapping) for r in (await conn.execute(sa.text(sql))).all()]
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _exec(url: str, *sqls: str) -> None:
    async def go():
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                for s in sqls:
                    await conn.execute(sa.text(s))
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_upgrade_from_previous_head_keeps_keys_and_ledger(fresh_url):
    cfg = _alembic_config(fresh_url)
    command.upgrade(cfg, PREVIOUS_HEAD)
    assert "user_id" not in {r["name"] for r in _columns(fresh_url, "keys")}  # really the old shape
    h = hash_key("sk-ant-old-key")
    _exec(fresh_url,
          "INSERT INTO keys (name, prefix, hash, status, created_ms, budget_micros, budget_period, spent_micros,"
          f" total_spent_micros, allowed_models, updated_ms) VALUES ('old', 'sk-ant-old-', '{h}', 'active', 1,"
          " 5000000, 'none', 1234, 1234, '[\"claude-haiku-4.5\"]', 1)",
          "INSERT INTO ledger (ts_ms, request_id, key_id, api, endpoint, status, input_tokens, output_tokens,"
          " cost_micros) VALUES (86400000, 'req_a', 1, 'anthropic', 'messages', 200, 10, 20, 1000),"
          " (86400001, 'req_b', 1, 'anthropic', 'messages', 200, 1, 2, 234)",
          "INSERT INTO usage_daily (day_ms, key_id, public_model, provider, api, requests, errors, cost_micros)"
          " VALUES (86400000, 1, 'claude-haiku-4.5', 'anthropic', 'anthropic', 2, 0, 1234)")
    before_keys = _rows(fresh_url, "SELECT * FROM keys")
    before_ledger = _rows(fresh_url, "SELECT * FROM ledger ORDER BY id")
    before_daily = _rows(fresh_url, "SELECT * FROM usage_daily")

    command.upgrade(cfg, "head")

    keys_after = _rows(fresh_url, "SELECT * FROM keys")
    assert [{k: r[k] for k in before_keys[0]} for r in keys_after] == before_keys
    assert keys_after[0]["user_id"] is None and keys_after[0]["team_id"] is None
    ledger_after = _rows(fresh_url, "SELECT * FROM ledger ORDER BY id")
    assert [{k: r[k] for k in before_ledger[0]} for r in ledger_after] == before_ledger
    assert {(r["user_id"], r["team_id"]) for r in ledger_after} == {(None, None)}
    daily_after = _rows(fresh_url, "SELECT * FROM usage_daily")
    assert [{k: r[k] for k in before_daily[0]} for r in daily_after] == before_daily
    assert (daily_after[0]["user_id"], daily_after[0]["team_id"]) == (0, 0)
    for table in ("users", "teams", "team_members"):
        assert _rows(fresh_url, f"SELECT COUNT(*) AS n FROM {table}") == [{"n": 0}]

    async def the_old_key_still_works():
        engine = make_engine(fresh_url)
        try:
            rec = await KeysRepo(engine).by_hash(h)
            assert rec is not None and rec.user is None and rec.team is None and rec.refs == (("key", 1),)
            assert rec.allowed_models == frozenset({"claude-haiku-4.5"})
            repo = BudgetRepo(engine, "inst", 60_000)
            assert await repo.grow_lease(("key", 1), "l1", 1000, 0)
            await repo.flush([], [Release(("key", 1), "l1", 600, 600)], [(("key", 1), "l1")])
            assert await repo.remaining(("key", 1), 0) == (5_000_000, 1834, 0)
        finally:
            await engine.dispose()

    asyncio.run(the_old_key_still_works())
    command.downgrade(cfg, PREVIOUS_HEAD)  # and back, data intact
    assert _rows(fresh_url, "SELECT cost_micros FROM usage_daily") == [{"cost_micros": 1234}]
    command.upgrade(cfg, "head")


def _columns(url: str, table: str) -> list[dict]:
    async def go():
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(lambda c: sa.inspect(c).get_columns(table))
        finally:
            await engine.dispose()

    return asyncio.run(go())
