"""The audit trail of admin actions: append and read, nothing else (the database refuses UPDATE and DELETE).

`changes` holds only the fields an action changed, as {field: {"before": x, "after": y}}. A key's secret
never reaches it: the hash column is not a field here, and a rotation records the visible prefix only.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from orgate.governance.keys import now_ms
from orgate.store.alerts_repo import plain_row
from orgate.store.schema import audit_log

SECRET_FIELDS = frozenset({"hash", "key", "password", "token", "secret"})
FILTERS = ("actor", "action", "target_type", "target_id")


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None, fields: tuple[str, ...] | None = None
         ) -> dict[str, dict[str, Any]]:
    """The fields whose value differs between two rows (all of `fields` when given), secrets left out."""
    b, a = before or {}, after or {}
    names = fields if fields is not None else tuple(dict.fromkeys([*b, *a]))
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        if name in SECRET_FIELDS or name == "updated_ms":
            continue
        if b.get(name) != a.get(name):
            out[name] = {"before": b.get(name), "after": a.get(name)}
    return out


class AuditRepo:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def append(self, *, actor: str, action: str, source: str | None = None, target_type: str | None = None,
                     target_id: Any = None, target_name: str | None = None,
                     changes: dict[str, Any] | None = None, request_id: str | None = None) -> int:
        row = {"ts_ms": now_ms(), "actor": actor[:200], "action": action, "source": (source or "")[:100] or None,
               "target_type": target_type, "target_id": None if target_id is None else str(target_id),
               "target_name": target_name[:200] if target_name else None,
               "changes": orjson.dumps(changes).decode() if changes else None, "request_id": request_id}
        async with self.engine.begin() as conn:
            res = await conn.execute(audit_log.insert().values(**row).returning(audit_log.c.id))
            return int(res.scalar_one())

    async def page(self, *, limit: int = 50, before_id: int | None = None, since_ms: int | None = None,
                   until_ms: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Newest first, keyset paged by id."""
        q = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if before_id is not None:
            q = q.where(audit_log.c.id < before_id)
        if since_ms is not None:
            q = q.where(audit_log.c.ts_ms >= since_ms)
        if until_ms is not None:
            q = q.where(audit_log.c.ts_ms < until_ms)
        for name in FILTERS:
            if filters.get(name):
                q = q.where(audit_log.c[name] == str(filters[name]))
        async with self.engine.connect() as conn:
            rows = [plain_row(r) for r in (await conn.execute(q)).all()]
        for r in rows:
            r["changes"] = orjson.loads(r["changes"]) if r["changes"] else None
        return rows
