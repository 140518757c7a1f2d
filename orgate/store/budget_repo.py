"""Atomic budget leases and batched settlement in SQL (SQLite and PostgreSQL alike), for keys, users and teams.

Growing a lease (governance/leases.py) is one conditional UPDATE: it succeeds only if
spent + reserved + amount <= budget, and it rolls a calendar period over in the same statement, so two
instances sharing a database can never both take the last dollar. Settlement and ledger rows are written by
the ledger writer in batches (off the request path); a lease row lives until given back or until it expires
(its instance stopped renewing it), and expired rows are swept by any instance.

The three levels live in three tables with the same budget columns; a lease row says its level. Rows are
locked in the order keys, users, teams (ids ascending within each), then reservations, in every
transaction that touches more than one, so PostgreSQL never deadlocks on them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from orgate.governance.keys import now_ms
from orgate.governance.leases import Ref, Release
from orgate.store import ledger_rows
from orgate.store.ledger_rows import LedgerRow
from orgate.store.row_bounds import row_fitter
from orgate.store.schema import keys, ledger, ledger_rejects, reservations, teams, usage_daily, users

DAY_MS = 86_400_000
ROLLUP_SUMS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens",
               "cache_write_1h_tokens", "cost_micros", "cache_savings_micros")
ROLLUP_KEY = ("day_ms", "key_id", "user_id", "team_id", "public_model", "provider", "api")
TABLES = {"key": keys, "user": users, "team": teams}  # in lock order
_fit_reject = row_fitter(ledger_rejects)


_PLACEHOLDER = {"qmark": lambda i: "?", "numeric_dollar": lambda i: f"${i}", "numeric": lambda i: f":{i}",
                "format": lambda i: "%s"}
_INSERTS: dict[str, str] = {}


async def _insert_rows(conn: Any, rows: list[LedgerRow]) -> None:
    """Ledger rows in with the driver's executemany and a statement built once per dialect: the rows are
    already tuples in column order, fitted to their columns' types (store/ledger_rows.py), so there is
    nothing left for SQLAlchemy's per-row parameter processing to do."""
    dialect = conn.dialect
    placeholder = _PLACEHOLDER.get(dialect.paramstyle)
    if placeholder is None:  # a driver with named parameters: SQLAlchemy's own path
        await conn.execute(ledger.insert(), [ledger_rows.as_dict(r) for r in rows])
        return
    sql = _INSERTS.get(dialect.name)
    if sql is None:
        q = dialect.identifier_preparer.quote
        sql = _INSERTS[dialect.name] = (
            f"INSERT INTO {q(ledger.name)} ({', '.join(q(c) for c in ledger_rows.COLUMNS)}) "
            f"VALUES ({', '.join(placeholder(i) for i in range(1, len(ledger_rows.COLUMNS) + 1))})")
    await conn.exec_driver_sql(sql, rows)


async def _lock(conn: Any, refs: set[Ref]) -> None:
    """Row locks on these keys, users and teams, in lock order (PostgreSQL; SQLite's write lock already
    covers the database)."""
    if not refs or conn.dialect.name != "postgresql":
        return
    for level, table in TABLES.items():
        ids = sorted(i for lv, i in refs if lv == level)
        if ids:
            await conn.execute(sa.select(table.c.id).where(table.c.id.in_(ids)).order_by(table.c.id)
                               .with_for_update())


_TS, _KEY, _USER, _TEAM, _MODEL, _PROVIDER, _API, _STATUS = (ledger_rows.INDEX[c] for c in (
    "ts_ms", "key_id", "user_id", "team_id", "public_model", "provider", "api", "status"))
_SUM_AT = tuple(ledger_rows.INDEX[c] for c in ROLLUP_SUMS)


async def _add_to_rollup(conn: Any, rows: list[LedgerRow]) -> None:
    """Fold a batch into usage_daily with one upsert per (day, key, user, team, model, provider, api)."""
    acc: dict[tuple[Any, ...], list[int]] = {}  # per rollup key: requests, errors, then ROLLUP_SUMS
    width = 2 + len(ROLLUP_SUMS)
    for r in rows:
        if r[_KEY] is None:
            continue  # not attributable to a key: the ledger keeps it, the per-key rollup cannot
        ident = (r[_TS] // DAY_MS * DAY_MS, r[_KEY], r[_USER] or 0, r[_TEAM] or 0, r[_MODEL] or "",
                 r[_PROVIDER] or "", r[_API])
        a = acc.get(ident)
        if a is None:
            a = acc[ident] = [0] * width
        a[0] += 1
        a[1] += r[_STATUS] >= 400
        for j, i in enumerate(_SUM_AT, 2):
            a[j] += r[i] or 0
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(usage_daily)
    cols = ("requests", "errors", *ROLLUP_SUMS)
    stmt = stmt.on_conflict_do_update(index_elements=list(ROLLUP_KEY),
                                      set_={c: usage_daily.c[c] + stmt.excluded[c] for c in cols})
    if not acc:
        return
    # sorted: concurrent instances upsert rows in the same order, so PostgreSQL cannot deadlock on them
    await conn.execute(stmt, [dict(zip((*ROLLUP_KEY, *cols), (*k, *acc[k]), strict=True))
                              for k in sorted(acc, key=str)])


class BudgetRepo:
    def __init__(self, engine: AsyncEngine, instance_id: str, reservation_ttl_ms: int) -> None:
        self.engine = engine
        self.instance_id = instance_id
        self.ttl_ms = reservation_ttl_ms

    async def grow_lease(self, ref: Ref, lease_id: str, amount: int, period_start_ms: int) -> bool:
        """Add `amount` micro-USD to this instance's lease on a key's, user's or team's budget; False when it
        does not fit."""
        level, ident = ref
        t = TABLES[level]
        rolled = t.c.period_start_ms < period_start_ms
        spent_now = sa.case((rolled, 0), else_=t.c.spent_micros)
        stmt = (
            t.update()
            .where(
                t.c.id == ident,
                t.c.budget_micros.is_not(None),
                spent_now + t.c.reserved_micros + amount <= t.c.budget_micros,
            )
            .values(
                spent_micros=spent_now,
                period_start_ms=sa.case((rolled, period_start_ms), else_=t.c.period_start_ms),
                reserved_micros=t.c.reserved_micros + amount,
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
                    id=lease_id, key_id=ident, level=level, instance_id=self.instance_id, amount_micros=amount,
                    expires_ms=expires,
                ))
        return True

    async def remaining(self, ref: Ref, period_start_ms: int) -> tuple[int | None, int, int]:
        """(budget, spent in the current period, reserved) as stored now."""
        t = TABLES[ref[0]]
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(t.c.budget_micros, t.c.spent_micros, t.c.reserved_micros,
                                                t.c.period_start_ms).where(t.c.id == ref[1]))).one()
        spent = 0 if row.period_start_ms < period_start_ms else row.spent_micros
        return row.budget_micros, spent, row.reserved_micros

    async def flush(self, rows: list[LedgerRow], releases: list[Release],
                    returned: list[tuple[Ref, str]] = ()) -> None:  # type: ignore[assignment]
        """One transaction: ledger rows and daily rollups in; settled costs moved from leases to the spend
        of every level (key, user, team) at once; idle leases given back. A lease row already swept
        (expired) was released by the sweeper, so only the spend is added for it."""
        async with self.engine.begin() as conn:
            # Lock order everywhere is keys, users, teams, then reservations (as grow_lease takes them):
            # without it a flush and a lease growth of the same row deadlock on PostgreSQL.
            await _lock(conn, {r.ref for r in releases} | {ref for ref, _ in returned})
            if rows:
                await _insert_rows(conn, rows)
                await _add_to_rollup(conn, rows)
            freed: dict[Ref, int] = defaultdict(int)
            spent: dict[Ref, int] = defaultdict(int)
            # One UPDATE per lease per flush, not one per settled request (a flush carries hundreds of
            # requests of the same few leases; each statement was a round trip to the database's thread).
            per_lease: dict[tuple[Ref, str], int] = defaultdict(int)
            for r in releases:
                spent[r.ref] += r.cost
                if r.lease_id is not None and r.released:
                    per_lease[(r.ref, r.lease_id)] += r.released
            for (ref, lease_id), released in per_lease.items():
                left = (await conn.execute(
                    reservations.update().where(reservations.c.id == lease_id)
                    .values(amount_micros=reservations.c.amount_micros - released)
                    .returning(reservations.c.amount_micros)
                )).scalar()
                if left is not None:
                    freed[ref] += released
            for ref, lease_id in returned:
                amt = (await conn.execute(
                    reservations.delete().where(reservations.c.id == lease_id).returning(reservations.c.amount_micros)
                )).scalar()
                if amt:
                    freed[ref] += amt
            await _apply(conn, spent, freed)

    async def reject(self, row: LedgerRow, error: str) -> None:
        """Record a ledger row the database refused, as JSON beside the reason (see store/writer.py)."""
        row = ledger_rows.as_dict(row)  # type: ignore[assignment]
        values = _fit_reject({"ts_ms": now_ms(), "request_id": row.get("request_id"), "key_id": row.get("key_id"),
                              "error": error[:2000], "row": orjson.dumps(row, default=repr).decode()})
        async with self.engine.begin() as conn:
            await conn.execute(ledger_rejects.insert().values(**values))

    async def sweep_expired(self) -> int:
        """Release reservations whose instance stopped renewing them (crashed); returns how many."""
        cutoff = now_ms()
        async with self.engine.begin() as conn:
            expired = (await conn.execute(
                sa.select(reservations.c.level, reservations.c.key_id).where(reservations.c.expires_ms < cutoff)
                .distinct()
            )).all()
            if not expired:
                return 0
            await _lock(conn, {(lv, i) for lv, i in expired})
            gone = (await conn.execute(
                reservations.delete().where(reservations.c.expires_ms < cutoff)
                .returning(reservations.c.level, reservations.c.key_id, reservations.c.amount_micros)
            )).all()
            freed: dict[Ref, int] = defaultdict(int)
            for level, ident, amt in gone:
                freed[(level, ident)] += amt
            await _apply(conn, {}, freed)
        return len(gone)

    async def renew(self) -> None:
        """Keep this live instance's in-flight reservations from expiring under long streams."""
        async with self.engine.begin() as conn:
            await conn.execute(reservations.update().where(reservations.c.instance_id == self.instance_id)
                               .values(expires_ms=now_ms() + self.ttl_ms))


async def _apply(conn: Any, spent: dict[Ref, int], freed: dict[Ref, int]) -> None:
    """Add spend and take freed lease amounts off `reserved`, row by row in lock order."""
    order = {level: i for i, level in enumerate(TABLES)}
    for ref in sorted(spent.keys() | freed.keys(), key=lambda r: (order[r[0]], r[1])):  # no deadlocks on PG
        t, cost = TABLES[ref[0]], spent.get(ref, 0)
        await conn.execute(t.update().where(t.c.id == ref[1]).values(
            spent_micros=t.c.spent_micros + cost, total_spent_micros=t.c.total_spent_micros + cost,
            reserved_micros=t.c.reserved_micros - freed.get(ref, 0),
        ))
