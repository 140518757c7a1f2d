"""One contract suite for the SQL stores, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import pytest

from orgate.governance import budget
from orgate.governance.keys import hash_key, now_ms
from orgate.governance.leases import Release
from orgate.store import ledger_rows
from orgate.store.budget_repo import BudgetRepo
from orgate.store.db import make_engine, upgrade
from orgate.store.keys_repo import KeysRepo
from orgate.store.ledger_repo import LedgerRepo
from orgate.store.schema import keys


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request):
    if request.param == "sqlite":
        yield f"sqlite:///{Path(tempfile.mkdtemp()) / 'contract.db'}"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
async def engine(db_url):
    await asyncio.to_thread(upgrade, db_url)
    eng = make_engine(db_url)
    yield eng
    await eng.dispose()


def _row(key_id, cost, **kw):
    return ledger_rows.from_mapping({"ts_ms": now_ms(), "request_id": "req_" + str(time.monotonic_ns()), "key_id": key_id, "api": "anthropic",
            "endpoint": "messages", "model": "m", "public_model": "m", "stream": False, "status": 200,
            "input_tokens": 1, "output_tokens": 2, "cost_micros": cost, **kw})


async def test_keys_create_hash_only_and_lookup(engine):
    repo = KeysRepo(engine)
    key, row = await repo.create(prefix="sk-ant-", name="alice", budget_micros=5_000_000, allowed_models=["a", "b"])
    assert key.startswith("sk-ant-") and len(key) > 40
    assert "hash" not in row and row["prefix"] == key[:12]
    rec = await repo.by_hash(hash_key(key))
    assert rec is not None and rec.name == "alice" and rec.allowed_models == frozenset({"a", "b"})
    assert await repo.by_hash(hash_key(key + "x")) is None
    new_key, _ = await repo.rotate(rec.id, "sk-ant-")
    assert await repo.by_hash(hash_key(key)) is None and (await repo.by_hash(hash_key(new_key))).id == rec.id


async def test_reservations_hold_the_cap_under_concurrency(engine):
    repo = KeysRepo(engine)
    _, row = await repo.create(prefix="sk-ant-", name="cap", budget_micros=10_000)
    budgets = BudgetRepo(engine, "inst-a", 60_000)
    results = await asyncio.gather(*[budgets.grow_lease(("key", row["id"]), f"lease-{i}", 1_000, 0) for i in range(40)])
    granted = [f"lease-{i}" for i, ok in enumerate(results) if ok]
    assert len(granted) == 10  # exactly what fits, however the 40 attempts interleave
    limit, spent, reserved = await budgets.remaining(("key", row["id"]), 0)
    assert (limit, spent, reserved) == (10_000, 0, 10_000)
    # Settling moves the actual cost from the lease to spend; giving the leases back frees the rest.
    await budgets.flush([_row(row["id"], 400)], [Release(("key", row["id"]), lid, 400, 400) for lid in granted],
                        [(("key", row["id"]), lid) for lid in granted])
    limit, spent, reserved = await budgets.remaining(("key", row["id"]), 0)
    assert (spent, reserved) == (4_000, 0)
    rows = await LedgerRepo(engine).page(key_id=row["id"])
    assert len(rows) == 1 and rows[0]["cost_micros"] == 400


async def test_settlement_after_sweep_does_not_double_release(engine):
    repo = KeysRepo(engine)
    _, row = await repo.create(prefix="sk-ant-", name="sweep", budget_micros=10_000)
    budgets = BudgetRepo(engine, "inst-b", 1)  # expires after 1 ms
    assert await budgets.grow_lease(("key", row["id"]), "lease-b", 3_000, 0)
    await asyncio.sleep(0.01)
    assert await budgets.sweep_expired() >= 1
    assert (await budgets.remaining(("key", row["id"]), 0))[2] == 0
    await budgets.flush([], [Release(("key", row["id"]), "lease-b", 700, 700)], [(("key", row["id"]), "lease-b")])
    assert await budgets.remaining(("key", row["id"]), 0) == (10_000, 700, 0)


async def test_period_rolls_over_atomically(engine):
    repo = KeysRepo(engine)
    _, row = await repo.create(prefix="sk-ant-", name="daily", budget_micros=1_000, budget_period="daily")
    budgets = BudgetRepo(engine, "inst-c", 60_000)
    today = budget.period_start("daily")
    yesterday = today - 86_400_000
    async with engine.begin() as conn:  # the key's current period started yesterday
        await conn.execute(keys.update().where(keys.c.id == row["id"]).values(period_start_ms=yesterday))
    assert await budgets.grow_lease(("key", row["id"]), "l1", 900, yesterday)
    await budgets.flush([], [Release(("key", row["id"]), "l1", 900, 900)], [(("key", row["id"]), "l1")])
    assert not await budgets.grow_lease(("key", row["id"]), "l2", 200, yesterday)  # yesterday's budget is spent
    assert await budgets.grow_lease(("key", row["id"]), "l3", 200, today)  # a new day starts from zero
    assert (await budgets.remaining(("key", row["id"]), today))[1] == 0


async def test_ledger_summaries(engine):
    repo = KeysRepo(engine)
    _, row = await repo.create(prefix="sk-ant-", name="sum")
    budgets = BudgetRepo(engine, "inst-d", 60_000)
    await budgets.flush([_row(row["id"], 100), _row(row["id"], 250, status=529, error_type="overloaded_error")],
                        [Release(("key", row["id"]), None, 350, 0)])
    ledger = LedgerRepo(engine)
    s = await ledger.summary(row["id"])
    assert (s["requests"], s["cost_micros"], s["errors"]) == (2, 350, 1)
    days = await ledger.by_day(row["id"], 0)
    assert len(days) == 1 and days[0]["cost_micros"] == 350 and days[0]["day_ms"] % 86_400_000 == 0
    assert (await repo.get(row["id"]))["total_spent_micros"] == 350
