"""Atomic budget leases and batched settlement in SQL (SQLite and PostgreSQL alike).

Growing a lease (governance/leases.py) is one conditional UPDATE: it succeeds only if
spent + reserved + amount <= budget, and it rolls a calendar period over in the same statement, so two
instances sharing a database can never both take the last dollar. Settlement and ledger rows are written by
the ledger writer in batches (off the request path); a lease row lives until given back or until it expires
(its instance stopped renewing it), and expired rows are swept by any instance.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from orgate.governance.keys import now_ms
from orgate.governance.leases import Release
from orgate.store.schema import keys, ledger, reservations, usage_daily

DAY_MS = 86_400_000
ROLLUP_SUMS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens",
               "cache_write_1h_tokens", "cost_micros", "cache_savings_micros")
ROLLUP_KEY = ("day_ms", "key_id", "public_model", "provider", "api")


async def _lock_keys(conn: Any, key_ids: set[int]) -> None:
    """Row locks on these keys, in id order (PostgreSQL; SQLite's write lock already covers the database)."""
    if key_ids and conn.dialect.name == "postgresql":
        await conn.execute(sa.select(keys.c.id).where(keys.c.id.in_(sorted(key_ids)))
                           .order_by(keys.c.id).with_for_update())


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


class BudgetRepo:
    def __init__(self, engine: AsyncEngine, instance_id: str, reservation_ttl_ms: int) -> None:
        self.engine = engine
        self.instance_id = instance_id
        self.ttl_ms = reservation_ttl_ms

    async def grow_lease(self, key_id: int, lease_id: str, amount: int, period_start_ms: int) -> bool:
        """Add `amount` micro-USD to this instance's lease on the key's budget; False when it does not fit."""
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
        expires = now_ms() + self.ttl_ms
        async with self.engine.begin() as conn:
            if (await conn.execute(stmt)).rowcount != 1:
                return False
            grown = await conn.execute(
                reservations.update().where(reservations.c.id == lease_id)
                .values(amount_micros=reservations.c.amount_micros + amount, expires_ms=expires)
            )
            if grown.rowcount == 0:
                await conn.execute(reservations.insert().values(
                    id=lease_id, key_id=key_id, instance_id=self.instance_id, amount_micros=amount,
                    expires_ms=expires,
                ))
        return True

    async def remaining(self, key_id: int, period_start_ms: int) -> tuple[int | None, int, int]:
        """(budget, spent in the current period, reserved) as stored now."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(keys.c.budget_micros, keys.c.spent_micros,
                                                keys.c.reserved_micros, keys.c.period_start_ms)
                                      .where(keys.c.id == key_id))).one()
        spent = 0 if row.period_start_ms < period_start_ms else row.spent_micros
        return row.budget_micros, spent, row.reserved_micros

    async def flush(self, rows: list[dict[str, Any]], releases: list[Release],
                    returned: list[tuple[int, str]] = ()) -> None:  # type: ignore[assignment]
        """One transaction: ledger rows and daily rollups in; settled costs moved from leases to spend;
        idle leases given back. A lease row already swept (expired) was released by the sweeper, so only
        the spend is added for it."""
        async with self.engine.begin() as conn:
            # Lock order everywhere is keys, then reservations (as grow_lease takes them): without it a
            # flush and a lease growth of the same key deadlock on PostgreSQL.
            await _lock_keys(conn, {r.key_id for r in releases} | {k for k, _ in returned})
            if rows:
                await conn.execute(ledger.insert(), rows)
                await _add_to_rollup(conn, rows)
            freed: dict[int, int] = defaultdict(int)
            spent: dict[int, int] = defaultdict(int)
            for r in releases:
                spent[r.key_id] += r.cost
                if r.lease_id is None or not r.released:
                    continue
                left = (await conn.execute(
                    reservations.update().where(reservations.c.id == r.lease_id)
                    .values(amount_micros=reservations.c.amount_micros - r.released)
                    .returning(reservations.c.amount_micros)
                )).scalar()
                if left is not None:
                    freed[r.key_id] += r.released
            for key_id, lease_id in returned:
                amt = (await conn.execute(
                    reservations.delete().where(reservations.c.id == lease_id).returning(reservations.c.amount_micros)
                )).scalar()
                if amt:
                    freed[key_id] += amt
            for key_id in sorted(spent.keys() | freed.keys()):  # fixed order: no deadlocks on PG
                await conn.execute(
                    keys.update().where(keys.c.id == key_id).values(
                        spent_micros=keys.c.spent_micros + spent[key_id],
                        total_spent_micros=keys.c.total_spent_micros + spent[key_id],
                        reserved_micros=keys.c.reserved_micros - freed[key_id],
                    )
                )

    async def sweep_expired(self) -> int:
        """Release reservations whose instance stopped renewing them (crashed); returns how many."""
        cutoff = now_ms()
        async with self.engine.begin() as conn:
            expired = (await conn.execute(
                sa.select(reservations.c.key_id).where(reservations.c.expires_ms < cutoff).distinct()
            )).scalars().all()
            if not expired:
                return 0
            await _lock_keys(conn, set(expired))
            gone = (await conn.execute(
                reservations.delete().where(reservations.c.expires_ms < cutoff)
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
