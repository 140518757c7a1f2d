"""Alert events, their deliveries, and the circuit state the instances share.

Exactly once per crossing, with any number of instances: an event is inserted under a unique `dedup_key`
(`ON CONFLICT DO NOTHING`), and only the insert that made the row creates its deliveries. Deliveries are an
outbox: a sender claims a due row with a conditional UPDATE (`claimed_until_ms < now`), so two instances
never send the same delivery at the same time, and a crashed sender's claim simply runs out.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from orgate.governance.keys import now_ms
from orgate.store.schema import alert_deliveries, alert_events, circuit_state, keys, teams, users


def plain_row(row: Any) -> dict[str, Any]:
    """A row as a dict with plain str keys (SQLAlchemy's quoted_name keys are refused by orjson)."""
    return {str(k): v for k, v in row._mapping.items()}


class AlertsRepo:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Only the engine's own dialect: PostgreSQL's (with its drivers' modules, ~2 MB) is not loaded on SQLite.
        if engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        self._insert = insert

    async def add_event(self, *, uid: str, dedup_key: str, kind: str, payload: str, urls: list[str]) -> bool:
        """Records the event and one pending delivery per URL; False when it was already recorded."""
        now = now_ms()
        async with self.engine.begin() as conn:
            ins = self._insert(alert_events).values(uid=uid, dedup_key=dedup_key, kind=kind, created_ms=now,
                                                    payload=payload)
            event_id = (await conn.execute(
                ins.on_conflict_do_nothing(index_elements=["dedup_key"]).returning(alert_events.c.id))).scalar()
            if event_id is None:
                return False
            if urls:
                await conn.execute(alert_deliveries.insert(), [
                    {"event_id": event_id, "url": u, "status": "pending", "next_attempt_ms": now} for u in urls])
        return True

    async def due(self, limit: int = 20) -> list[dict[str, Any]]:
        now = now_ms()
        q = (sa.select(alert_deliveries.c.id, alert_deliveries.c.url, alert_deliveries.c.attempts,
                       alert_events.c.uid, alert_events.c.kind, alert_events.c.payload)
             .join(alert_events, alert_events.c.id == alert_deliveries.c.event_id)
             .where(alert_deliveries.c.status == "pending", alert_deliveries.c.next_attempt_ms <= now,
                    alert_deliveries.c.claimed_until_ms < now)
             .order_by(alert_deliveries.c.id).limit(limit))
        async with self.engine.connect() as conn:
            return [plain_row(r) for r in (await conn.execute(q)).all()]

    async def claim(self, delivery_id: int, hold_ms: int) -> bool:
        now = now_ms()
        async with self.engine.begin() as conn:
            res = await conn.execute(alert_deliveries.update().where(
                alert_deliveries.c.id == delivery_id, alert_deliveries.c.status == "pending",
                alert_deliveries.c.claimed_until_ms < now).values(claimed_until_ms=now + hold_ms))
            return res.rowcount == 1

    async def record_attempt(self, delivery_id: int, *, ok: bool, status: int | None, error: str | None,
                             give_up: bool, retry_at_ms: int) -> None:
        values: dict[str, Any] = {"attempts": alert_deliveries.c.attempts + 1, "last_status": status,
                                  "last_error": (error or "")[:300] or None, "claimed_until_ms": 0}
        if ok:
            values.update(status="delivered", delivered_ms=now_ms())
        elif give_up:
            values.update(status="failed")
        else:
            values.update(next_attempt_ms=retry_at_ms)
        async with self.engine.begin() as conn:
            await conn.execute(alert_deliveries.update().where(alert_deliveries.c.id == delivery_id).values(**values))

    async def events(self, limit: int = 50, before_id: int | None = None, kind: str | None = None
                     ) -> list[dict[str, Any]]:
        """Newest first, each with its deliveries (for the console and /admin/api/alerts)."""
        q = sa.select(alert_events).order_by(alert_events.c.id.desc()).limit(limit)
        if before_id is not None:
            q = q.where(alert_events.c.id < before_id)
        if kind:
            q = q.where(alert_events.c.kind == kind)
        async with self.engine.connect() as conn:
            rows = [plain_row(r) for r in (await conn.execute(q)).all()]
            ids = [r["id"] for r in rows]
            deliveries = (await conn.execute(sa.select(alert_deliveries).where(
                alert_deliveries.c.event_id.in_(ids)).order_by(alert_deliveries.c.id))).all() if ids else []
        by_event: dict[int, list[dict[str, Any]]] = {}
        for d in deliveries:
            by_event.setdefault(d.event_id, []).append(plain_row(d))
        for r in rows:
            r["deliveries"] = by_event.get(r["id"], [])
        return rows

    async def budget_rows(self, level: str, ids: set[int]) -> list[dict[str, Any]]:
        """Budgeted keys', users' or teams' spend as stored now, for the threshold check after a ledger flush."""
        table = {"key": keys, "user": users, "team": teams}[level]
        extra = {"key": [keys.c.prefix], "user": [users.c.email], "team": []}[level]
        q = sa.select(table.c.id, table.c.name, *extra, table.c.budget_micros, table.c.budget_period,
                      table.c.period_start_ms, table.c.spent_micros).where(
            table.c.id.in_(sorted(ids)), table.c.budget_micros.is_not(None))
        async with self.engine.connect() as conn:
            return [plain_row(r) for r in (await conn.execute(q)).all()]

    async def circuit_moved(self, deployment: str, to_state: str) -> bool:
        """Moves the shared circuit state; True only for the instance whose update made the change."""
        now = now_ms()
        async with self.engine.begin() as conn:
            if to_state == "open":
                ins = self._insert(circuit_state).values(deployment=deployment, state="open", changed_ms=now)
                made = (await conn.execute(ins.on_conflict_do_nothing(index_elements=["deployment"])
                                           .returning(circuit_state.c.deployment))).scalar()
                if made is not None:
                    return True
            other = "closed" if to_state == "open" else "open"
            res = await conn.execute(circuit_state.update().where(
                circuit_state.c.deployment == deployment, circuit_state.c.state == other)
                .values(state=to_state, changed_ms=now))
            return res.rowcount == 1
