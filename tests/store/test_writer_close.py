"""Shutdown never drops a batch whose flush is waiting for the database (two workers, one SQLite file)."""

from __future__ import annotations

import asyncio
import sqlite3

from orgate.config import load_settings
from orgate.store.budget_repo import BudgetRepo
from orgate.store.db import make_engine, upgrade
from orgate.store.writer import LedgerWriter


def test_close_waits_for_a_flush_blocked_on_the_write_lock(tmp_path):
    url = f"sqlite:///{tmp_path / 'orgate.db'}"
    upgrade(url)
    s = load_settings(None, env={"ORGATE_DATA_DIR": str(tmp_path), "ORGATE_LEDGER__FLUSH_INTERVAL_SECONDS": "0.05"})
    other = sqlite3.connect(tmp_path / "orgate.db", isolation_level=None)  # "the other worker"
    other.execute("PRAGMA journal_mode=WAL")  # as orgate's engines set it on their first connection
    other.execute("BEGIN IMMEDIATE")  # holds the write lock: the writer's flush waits (busy_timeout)

    async def go() -> None:
        engine = make_engine(url)
        try:
            writer = LedgerWriter(BudgetRepo(engine, "worker-a", 60_000), s)
            writer.start()
            writer.record({"ts_ms": 1, "request_id": "close-1", "key_id": None, "api": "anthropic", "status": 200,
                           "stream": False}, [])
            while writer._rows:  # the background flush took the row and is waiting for the lock
                await asyncio.sleep(0.01)
            closing = asyncio.create_task(writer.close())  # SIGTERM arrives now
            await asyncio.sleep(0.3)
            other.execute("COMMIT")  # the other worker's transaction ends
            await closing
        finally:
            await engine.dispose()

    asyncio.run(go())
    rows = other.execute("SELECT request_id FROM ledger").fetchall()
    assert rows == [("close-1",)]
