"""Reading the ledger: summaries by day and model, and pages of rows with filters.

These queries serve the /usage page, the admin console and the CLI; no model request ever runs them.
Every query filters on (key_id, ts_ms) or ts_ms, which the two ledger indexes cover.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from orgate.store.schema import ledger, usage_daily

DAY_MS = 86_400_000
TOKEN_COLS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens")
SUM_COLS = (*TOKEN_COLS, "cost_micros", "cache_savings_micros")


# Filters the daily rollup can answer, and the rollup column each one reads.
ROLLUP_FILTERS = {"model": "public_model", "provider": "provider", "api": "api", "user_id": "user_id",
                  "team_id": "team_id"}


def days_back(days: int, now_ms: int | None = None) -> int:
    """Start of the UTC day `days - 1` days before today: "the last N days" as whole days."""
    import time

    now = int(time.time() * 1000) if now_ms is None else now_ms
    return now // DAY_MS * DAY_MS - (days - 1) * DAY_MS


def use_rollup(since_ms: int | None, until_ms: int | None = None, **filters: Any) -> bool:
    """Whole-day ranges with model/provider/api filters are answered from usage_daily, not the ledger."""
    aligned = all(t is None or t % DAY_MS == 0 for t in (since_ms, until_ms))
    used = {k for k, v in filters.items() if v}
    return aligned and used <= ROLLUP_FILTERS.keys()


def total(expr: Any) -> Any:
    """SUM as a BIGINT on every database: PostgreSQL sums BIGINT into NUMERIC (a Decimal in Python, which
    JSON refuses), SQLite into an integer; the cast makes both return int."""
    return sa.cast(sa.func.coalesce(sa.func.sum(expr), 0), sa.BigInteger)


def rollup_sums() -> list[Any]:
    cols: list[Any] = [total(usage_daily.c.requests).label("requests")]
    cols += [total(usage_daily.c[c]).label(c) for c in SUM_COLS]
    cols.append(total(usage_daily.c.errors).label("errors"))
    return cols


def rollup_where(key_id: int | None, since_ms: int | None, until_ms: int | None = None, **f: Any) -> list[Any]:
    conds: list[Any] = []
    if key_id is not None:
        conds.append(usage_daily.c.key_id == key_id)
    if since_ms is not None:
        conds.append(usage_daily.c.day_ms >= since_ms)
    if until_ms is not None:
        conds.append(usage_daily.c.day_ms < until_ms)
    for name, col in ROLLUP_FILTERS.items():
        if f.get(name):
            conds.append(usage_daily.c[col] == f[name])
    return conds


def _sums() -> list[Any]:
    cols: list[Any] = [sa.func.count().label("requests")]
    cols += [total(ledger.c[c]).label(c) for c in SUM_COLS]
    cols.append(total(sa.case((ledger.c.status >= 400, 1), else_=0)).label("errors"))
    return cols


def _where(key_id: int | None, since_ms: int | None, until_ms: int | None = None, **f: Any) -> list[Any]:
    conds: list[Any] = []
    if key_id is not None:
        conds.append(ledger.c.key_id == key_id)
    if since_ms is not None:
        conds.append(ledger.c.ts_ms >= since_ms)
    if until_ms is not None:
        conds.append(ledger.c.ts_ms < until_ms)
    if f.get("model"):
        conds.append(ledger.c.public_model == f["model"])
    if f.get("provider"):
        conds.append(ledger.c.provider == f["provider"])
    if f.get("status") == "error":
        conds.append(ledger.c.status >= 400)
    elif f.get("status") == "ok":
        conds.append(ledger.c.status < 400)
    if f.get("api"):
        conds.append(ledger.c.api == f["api"])
    for col in ("user_id", "team_id"):
        if f.get(col):
            conds.append(ledger.c[col] == f[col])
    return conds


def _row(r: Any) -> dict[str, Any]:
    # PostgreSQL returns SUM() of BIGINT as Decimal, which JSON encoders refuse: /v1/usage answered 500 there.
    return {k: (int(v) if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) else v)
            for k, v in r._mapping.items()}


class LedgerRepo:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def summary(self, key_id: int | None = None, since_ms: int | None = None,
                      until_ms: int | None = None) -> dict[str, Any]:
        if use_rollup(since_ms, until_ms):
            q = sa.select(*rollup_sums()).where(*rollup_where(key_id, since_ms, until_ms))
        else:
            q = sa.select(*_sums()).where(*_where(key_id, since_ms, until_ms))
        async with self.engine.connect() as conn:
            return _row((await conn.execute(q)).one())

    async def by_day(self, key_id: int | None, since_ms: int) -> list[dict[str, Any]]:
        """One row per UTC day from the day containing `since_ms` (read from the daily rollup)."""
        day = usage_daily.c.day_ms
        q = (sa.select(day.label("day_ms"), *rollup_sums())
             .where(*rollup_where(key_id, since_ms // DAY_MS * DAY_MS)).group_by(day).order_by(day))
        async with self.engine.connect() as conn:
            return [_row(r) for r in (await conn.execute(q)).all()]

    async def by_group(self, column: str, key_id: int | None, since_ms: int | None) -> list[dict[str, Any]]:
        if use_rollup(since_ms) and column in ROLLUP_FILTERS.values():
            col = usage_daily.c[column]
            q = (sa.select(col.label("name"), *rollup_sums()).where(*rollup_where(key_id, since_ms))
                 .group_by(col).order_by(sa.desc("cost_micros")))
        else:
            col = ledger.c[column]
            q = (sa.select(col.label("name"), *_sums()).where(*_where(key_id, since_ms))
                 .group_by(col).order_by(sa.desc("cost_micros")))
        async with self.engine.connect() as conn:
            rows = [_row(r) for r in (await conn.execute(q)).all()]
        for r in rows:
            r["name"] = r["name"] or None  # the rollup stores an unknown model or provider as ''
        return rows

    async def page(self, *, key_id: int | None = None, limit: int = 50, before_id: int | None = None,
                   since_ms: int | None = None, until_ms: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        conds = _where(key_id, since_ms, until_ms, **filters)
        if before_id is not None:
            conds.append(ledger.c.id < before_id)  # keyset paging: stays fast at a million rows
        q = sa.select(ledger).where(*conds).order_by(ledger.c.id.desc()).limit(min(max(limit, 1), 1000))
        async with self.engine.connect() as conn:
            return [dict(r._mapping) for r in (await conn.execute(q)).all()]
