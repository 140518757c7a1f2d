"""Atomic budget reservations and batched settlement in SQL (SQLite and PostgreSQL alike).

Admission is one conditional UPDATE: it succeeds only if spent + reserved + amount <= budget, and it rolls
a calendar period over in the same statement, so two instances sharing a database can never both take the
last dollar. Settlement and ledger rows are written by the ledger writer in batches (off the request path);
a reservation row lives until settled or until it expires, and expired rows are swept by any instance.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from orgate.governance.keys import now_ms
from orgate.store.schema import keys, ledger, reservations, usage_daily

DAY_MS = 86_400_000
ROLLUP_SUMS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens",
               "cache_write_1h_tokens", "cost_micros", "cache_savings_micros")
ROLLUP_KEY = ("day_ms", "key_id", "public_model", "provider", "api")


async def _add_to_rollup(conn: Any, rows: list[dict[str, Any]]) -> None:
    """Fold a batch into usage_daily with one upsert per (day, key, model, provider, api)."""
    acc: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        ident = (r["ts_ms"] // DAY_MS * DAY_MS, r["key_id"], r.get("public_model") or "", r.get("provider") or "",
                 r["api"])
        a = acc.get(ident)
        if a is None:
            a = acc[ident] = {**dict(zip(ROLLUP_KEY, ident, strict=True)), "requests": 0, "errors": 0,
                              **{c: 0 for c in ROLLUP_SUMS}}
        a["requests"] += 1
        a["errors"] += 1 if r["status"] >= 400 else 0
        for c in ROLLUP_SUMS:
            a[c] += r.get(c) or 0
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(usage_daily)
    cols = ("requests", "errors", *ROLLUP_SUMS)
    stmt = stmt.on_conflict_do_update(index_elements=list(ROLLUP_KEY),
                                      set_={c: usage_daily.c[c] + stmt.excluded[c] for c in cols})
    # sorted: concurrent instances upsert rows in the same order, so PostgreSQL cannot deadlock on them
    await conn.execute(stmt, [acc[k] for k in sorted(acc, key=str)])


@dataclass(slots=True)
class Settlement:
    key_id: int
    reservation_id: str | None
    cost_micros: int


class BudgetRepo:
    def __init__(self, engine: AsyncEngine, instance_id: str, reservation_ttl_ms: int) -> None:
        self.engine = engine
        self.instance_id = instance_id
        self.ttl_ms = reservation_ttl_ms

    async def reserve(self, key_id: int, amount: int, period_start_ms: int) -> str | None:
        """Hold `amount` micro-USD of the key's budget; None when it does not fit."""
        rolled = keys.c.period_start_ms < period_start_ms
        spent_now = sa.case((rolled, 0), else_=keys.c.spent_micros)
        stmt = (
            keys.update()
            .where(
                keys.c.id == key_id,
                keys.c.budget_micros.is_not(None),
                spent_now + keys.c.reserved_micros + amount <= keys.c.budget_micros,
            )
            .values(
                spent_micros=spent_now,
                period_start_ms=sa.case((rolled, period_start_ms), else_=keys.c.period_start_ms),
                reserved_micros=keys.c.reserved_micros + amount,
            )
        )
        rid = uuid.uuid4().hex
        async with self.engine.begin() as conn:
            if (await conn.execute(stmt)).rowcount != 1:
                return None
            await conn.execute(
                reservations.insert().values(
                    id=rid, key_id=key_id, instance_id=self.instance_id, amount_micros=amount,
                    expires_ms=now_ms() + self.ttl_ms,
                )
            )
        return rid

    async def remaining(self, key_id: int, period_start_ms: int) -> tuple[int | None, int, int]:
        """(budget, spent in the current period, reserved) as stored now."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(keys.c.budget_micros, keys.c.spent_micros,
                                                keys.c.reserved_micros, keys.c.period_start_ms)
                                      .where(keys.c.id == key_id))).one()
        spent = 0 if row.period_start_ms < period_start_ms else row.spent_micros
        return row.budget_micros, spent, row.reserved_micros

    async def flush(self, rows: list[dict[str, Any]], settlements: list[Settlement]) -> None:
        """One transaction: ledger rows in, daily rollups added to, reservations swapped for actual costs."""
        async with self.engine.begin() as conn:
            if rows:
                await conn.execute(ledger.insert(), rows)
                await _add_to_rollup(conn, rows)
            released: dict[int, int] = defaultdict(int)
            spent: dict[int, int] = defaultdict(int)
            for s in settlements:
                spent[s.key_id] += s.cost_micros
                if s.reservation_id is None:
                    continue
                # A reservation already swept (expired) was already released: only the cost is added.
                amt = (await conn.execute(
                    reservations.delete().where(reservations.c.id == s.reservation_id)
                    .returning(reservations.c.amount_micros)
                )).scalar()
                if amt is not None:
                    released[s.key_id] += amt
            for key_id in sorted(spent.keys() | released.keys()):  # fixed order: no deadlocks on PG
                await conn.execute(
                    keys.update().where(keys.c.id == key_id).values(
                        spent_micros=keys.c.spent_micros + spent[key_id],
                        total_spent_micros=keys.c.total_spent_micros + spent[key_id],
                        reserved_micros=keys.c.reserved_micros - released[key_id],
                    )
                )

    async def sweep_expired(self) -> int:
        """Release reservations whose instance stopped renewing them (crashed); returns how many."""
        async with self.engine.begin() as conn:
            gone = (await conn.execute(
                reservations.delete().where(reservations.c.expires_ms < now_ms())
                .returning(reservations.c.key_id, reservations.c.amount_micros)
            )).all()
            per_key: dict[int, int] = defaultdict(int)
            for key_id, amt in gone:
                per_key[key_id] += amt
            for key_id in sorted(per_key):
                await conn.execute(keys.update().where(keys.c.id == key_id)
                                   .values(reserved_micros=keys.c.reserved_micros - per_key[key_id]))
        return len(gone)

    async def renew(self) -> None:
        """Keep this live instance's in-flight reservations from expiring under long streams."""
        async with self.engine.begin() as conn:
            await conn.execute(reservations.update().where(reservations.c.instance_id == self.instance_id)
                               .values(expires_ms=now_ms() + self.ttl_ms))
