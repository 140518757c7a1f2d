"""The alerts' in-memory dedup set is bounded, and dropping it never lets an event through twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from orgate.config import AlertSettings
from orgate.observe import alerts
from orgate.observe.alerts import Alerts
from orgate.store.alerts_repo import AlertsRepo
from orgate.store.db import make_engine, upgrade


def test_dedup_memory_is_bounded_and_the_database_still_dedups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(alerts, "SEEN_LIMIT", 8)
    url = f"sqlite:///{tmp_path / 'orgate.db'}"
    upgrade(url)

    async def go() -> tuple[list[bool], int, bool, int]:
        engine = make_engine(url)
        try:
            a = Alerts(AlertSettings(), AlertsRepo(engine))
            made = [await a.emit("circuit.open", f"circuit:d{i}:open:1", {"i": i}) for i in range(30)]
            size = len(a._seen)
            assert "circuit:d0:open:1" not in a._seen  # forgotten in memory ...
            again = await a.emit("circuit.open", "circuit:d0:open:1", {"i": 0})  # ... and refused by the database
            events = await a.repo.events(100)
            return made, size, again, sum(1 for e in events if e["dedup_key"] == "circuit:d0:open:1")
        finally:
            await engine.dispose()

    made, size, again, rows = asyncio.run(go())
    assert made == [True] * 30
    assert size <= 8
    assert again is False and rows == 1
