"""Aggregates for the admin console: usage grouped by key, model, provider or day, bounded and time-ranged.

Every query is filtered on ts_ms (the ledger's ts index) and capped with LIMIT, so the console never loads
a whole table; grouping by key joins only the keys on the returned page. SQLAlchemy Core only: the same
statements run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from orgate.store.ledger_repo import (
    DAY_MS,
    SUM_COLS,
    _row,
    _sums,
    _where,
    rollup_sums,
    rollup_where,
    use_rollup,
)
from orgate.store.schema import keys, ledger, teams, usage_daily, users

GROUPS = {"key": "key_id", "model": "public_model", "provider": "provider", "api": "api", "user": "user_id",
          "team": "team_id"}


class AdminQueries:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def grouped(self, group: str, *, since_ms: int | None, until_ms: int | None = None,
                      key_id: int | None = None, limit: int = 100, **filters: Any) -> list[dict[str, Any]]:
        """Usage per key/model/provider/api (largest spend first) or per UTC day (oldest first).

        Whole-day ranges come from the usage_daily rollup; anything finer (hours, status filter) scans the ledger.
        """
        rollup = use_rollup(since_ms, until_ms, **filters)
        if rollup:
            conds, sums, table = rollup_where(key_id, since_ms, until_ms, **filters), rollup_sums(), usage_daily
        else:
            conds, sums, table = _where(key_id, since_ms, until_ms, **filters), _sums(), ledger
        if group == "day":
            col: Any = usage_daily.c.day_ms // DAY_MS if rollup else ledger.c.ts_ms // DAY_MS
            q = sa.select(col.label("name"), *sums).where(*conds).group_by(col).order_by(col).limit(limit)
        else:
            col = table.c[GROUPS[group]]
            q = (sa.select(col.label("name"), *sums).where(*conds).group_by(col)
                 .order_by(sa.desc("cost_micros"), sa.desc("requests")).limit(limit))
        async with self.engine.connect() as conn:
            rows = [_row(r) for r in (await conn.execute(q)).all()]
            if rollup and group in ("model", "provider"):
                for r in rows:
                    r["name"] = r["name"] or None  # the rollup stores an unknown model or provider as ''
            if group == "key":
                await self._name_keys(conn, rows)
            elif group in ("user", "team"):
                await _name_accounts(conn, group, rows)
        if group == "day":
            for r in rows:
                r["day_ms"] = int(r.pop("name")) * DAY_MS
        return rows

    async def _name_keys(self, conn: Any, rows: list[dict[str, Any]]) -> None:
        ids = [r["name"] for r in rows if r["name"] is not None]
        names: dict[int, tuple[str, str, str]] = {}
        if ids:
            q = sa.select(keys.c.id, keys.c.name, keys.c.prefix, keys.c.status).where(keys.c.id.in_(ids))
            names = {r.id: (r.name, r.prefix, r.status) for r in (await conn.execute(q)).all()}
        for r in rows:
            r["key_id"] = r.pop("name")
            r["key_name"], r["key_prefix"], r["key_status"] = names.get(r["key_id"], (None, None, None))

    async def summary(self, since_ms: int | None, until_ms: int | None = None, **filters: Any) -> dict[str, Any]:
        if use_rollup(since_ms, until_ms, **filters):
            q = sa.select(*rollup_sums()).where(*rollup_where(None, since_ms, until_ms, **filters))
        else:
            q = sa.select(*_sums()).where(*_where(None, since_ms, until_ms, **filters))
        async with self.engine.connect() as conn:
            out = _row((await conn.execute(q)).one())
        for c in SUM_COLS:
            out[c] = int(out[c] or 0)
        return out

    async def key_counts(self) -> dict[str, int]:
        q = sa.select(keys.c.status, sa.func.count()).group_by(keys.c.status)
        async with self.engine.connect() as conn:
            return {str(s): int(n) for s, n in (await conn.execute(q)).all()}

    async def key_names(self, ids: list[int]) -> dict[int, str]:
        if not ids:
            return {}
        q = sa.select(keys.c.id, keys.c.name).where(keys.c.id.in_(sorted(set(ids))))
        async with self.engine.connect() as conn:
            return {r.id: r.name for r in (await conn.execute(q)).all()}


async def _name_accounts(conn: Any, level: str, rows: list[dict[str, Any]]) -> None:
    """Rows grouped by user or team get `<level>_id` and `<level>_name`; the rollup says 0 for none."""
    t = users if level == "user" else teams
    ids = [r["name"] for r in rows if r["name"]]
    names: dict[int, str] = {}
    if ids:
        names = {i: n for i, n in (await conn.execute(sa.select(t.c.id, t.c.name).where(t.c.id.in_(ids)))).all()}
    for r in rows:
        ident = r.pop("name") or None
        r[f"{level}_id"], r[f"{level}_name"] = ident, names.get(ident) if ident else None


CSV_COLUMNS = ("id", "ts_ms", "request_id", "key_id", "user_id", "team_id", "api", "endpoint", "model", "public_model",
               "provider",
               "upstream_model", "stream", "status", "error_type", "input_tokens", "output_tokens",
               "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens", "cost_micros",
               "cache_savings_micros", "latency_ms", "ttft_ms", "attempts", "disconnected")


async def csv_chunks(repo: Any, filters: dict[str, Any], page: int, max_rows: int) -> AsyncIterator[bytes]:
    """The filtered ledger as CSV, newest first, one keyset page per chunk (never all rows in memory)."""
    yield (",".join(CSV_COLUMNS) + "\r\n").encode()
    before: int | None = None
    sent = 0
    while sent < max_rows:
        rows = await repo.page(limit=page, before_id=before, **filters)
        if not rows:
            return
        buf = io.StringIO()
        w = csv.writer(buf)
        for r in rows:
            w.writerow([_cell(r.get(c)) for c in CSV_COLUMNS])
        yield buf.getvalue().encode()
        sent += len(rows)
        before = rows[-1]["id"]
        if len(rows) < page:
            return


def _cell(v: Any) -> Any:
    # Spreadsheet formula injection: a model name like "=HYPERLINK(...)" must stay text.
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@"):
        return "'" + v
    return "" if v is None else v


USAGE_CSV = ("requests", "errors", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens",
             "cache_write_1h_tokens", "cost_micros")
GROUP_NAMES = {"key": ("key_id", "key_name"), "user": ("user_id", "user_name"), "team": ("team_id", "team_name")}


def usage_csv_rows(group: str, rows: list[dict[str, Any]]) -> bytes:
    """Grouped usage (AdminQueries.grouped) as one CSV document: the group's id and name, then the sums."""
    ident = GROUP_NAMES.get(group, (group,))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*ident, *USAGE_CSV, "cost_usd"])
    for r in rows:
        cost = int(r["cost_micros"])
        w.writerow([*(_cell(r.get(c) if c in r else r.get("name")) for c in ident),
                    *(int(r[c]) for c in USAGE_CSV), f"{cost // 1_000_000}.{cost % 1_000_000:06d}"])
    return buf.getvalue().encode()
