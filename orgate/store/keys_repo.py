"""Keys in SQL: create, read, update. No HTTP, no business rules beyond the columns."""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from orgate.governance.budget import period_start
from orgate.governance.keys import Account, KeyRecord, generate, hash_key, now_ms, visible_prefix
from orgate.store.schema import keys, teams, users

UPDATABLE = ("name", "budget_micros", "budget_period", "expires_ms", "allowed_models", "rpm", "tpm",
             "max_concurrency", "status", "user_id", "team_id")
ACCOUNT_COLS = ("id", "name", "status", "budget_micros", "budget_period", "allowed_models", "rpm", "tpm")


def _allowed(raw: str | None) -> frozenset[str] | None:
    return frozenset(orjson.loads(raw)) if raw else None


def _account(level: str, row: Any) -> Account | None:
    m = row._mapping
    if m[f"{level}_id_"] is None:
        return None
    return Account(level, m[f"{level}_id_"], m[f"{level}_name"], m[f"{level}_status"], m[f"{level}_budget_micros"],
                   m[f"{level}_budget_period"], _allowed(m[f"{level}_allowed_models"]), m[f"{level}_rpm"],
                   m[f"{level}_tpm"])


def _record(row: Any) -> KeyRecord:
    return KeyRecord(
        id=row.id, name=row.name, prefix=row.prefix, hash=row.hash, status=row.status,
        created_ms=row.created_ms, expires_ms=row.expires_ms, budget_micros=row.budget_micros,
        budget_period=row.budget_period, allowed_models=_allowed(row.allowed_models),
        rpm=row.rpm, tpm=row.tpm, max_concurrency=row.max_concurrency,
        user=_account("user", row), team=_account("team", row),
    )


def _with_accounts() -> Any:
    """A key with its user and team (what admission needs of them), in one query."""
    cols = [*keys.c]
    for level, t in (("user", users), ("team", teams)):
        cols += [t.c[c].label(f"{level}_{c}" + ("_" if c == "id" else "")) for c in ACCOUNT_COLS]
    return (sa.select(*cols).select_from(keys.outerjoin(users, users.c.id == keys.c.user_id)
                                         .outerjoin(teams, teams.c.id == keys.c.team_id)))


def public_row(row: Any) -> dict[str, Any]:
    """A key as admins see it: never the hash (plain str keys: orjson refuses SQLAlchemy's quoted_name)."""
    d = {str(k): v for k, v in row._mapping.items()}
    d.pop("hash", None)
    d["allowed_models"] = orjson.loads(d["allowed_models"]) if d.get("allowed_models") else None
    return d


class KeysRepo:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self, *, prefix: str, name: str, **fields: Any) -> tuple[str, dict[str, Any]]:
        """Returns the plaintext key (to show once) and the stored row."""
        key = generate(prefix)
        now = now_ms()
        values = {k: v for k, v in fields.items() if k in UPDATABLE and v is not None}
        if "allowed_models" in values:
            values["allowed_models"] = orjson.dumps(list(values["allowed_models"])).decode()
        values.setdefault("budget_period", "none")
        values.setdefault("status", "active")
        values["period_start_ms"] = period_start(values["budget_period"])
        async with self.engine.begin() as conn:
            res = await conn.execute(
                keys.insert().values(
                    name=name, prefix=visible_prefix(key), hash=hash_key(key),
                    created_ms=now, updated_ms=now, **values,
                )
            )
            key_id = res.inserted_primary_key[0]
            row = (await conn.execute(sa.select(keys).where(keys.c.id == key_id))).one()
        return key, public_row(row)

    async def by_hash(self, key_hash: str) -> KeyRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(_with_accounts().where(keys.c.hash == key_hash))).first()
        return _record(row) if row else None

    async def get(self, key_id: int) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(keys).where(keys.c.id == key_id))).first()
        return public_row(row) if row else None

    async def list(self, *, limit: int = 100, offset: int = 0, include_deleted: bool = False,
                   search: str | None = None) -> tuple[list[dict[str, Any]], int]:
        q = sa.select(keys)
        cq = sa.select(sa.func.count()).select_from(keys)
        if not include_deleted:
            q, cq = q.where(keys.c.status != "deleted"), cq.where(keys.c.status != "deleted")
        if search:
            cond = sa.or_(keys.c.name.ilike(f"%{search}%"), keys.c.prefix.ilike(f"{search}%"))
            q, cq = q.where(cond), cq.where(cond)
        q = q.order_by(keys.c.id.desc()).limit(limit).offset(offset)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
            total = (await conn.execute(cq)).scalar_one()
        return [public_row(r) for r in rows], total

    async def update(self, key_id: int, **fields: Any) -> dict[str, Any] | None:
        values = {k: v for k, v in fields.items() if k in UPDATABLE}
        if "allowed_models" in values and values["allowed_models"] is not None:
            values["allowed_models"] = orjson.dumps(list(values["allowed_models"])).decode()
        values["updated_ms"] = now_ms()
        async with self.engine.begin() as conn:
            res = await conn.execute(keys.update().where(keys.c.id == key_id).values(**values))
            if res.rowcount == 0:
                return None
        return await self.get(key_id)

    async def rotate(self, key_id: int, prefix: str) -> tuple[str, dict[str, Any]] | None:
        """A new secret for the same key row (budget, spend and ledger history stay)."""
        key = generate(prefix)
        async with self.engine.begin() as conn:
            res = await conn.execute(
                keys.update().where(keys.c.id == key_id, keys.c.status != "deleted").values(
                    hash=hash_key(key), prefix=visible_prefix(key), updated_ms=now_ms()
                )
            )
            if res.rowcount == 0:
                return None
        row = await self.get(key_id)
        assert row is not None
        return key, row

    async def find(self, ident: str) -> dict[str, Any] | None:
        """By numeric id, visible prefix or name (for the CLI)."""
        conds = [keys.c.prefix == ident, keys.c.name == ident]
        if ident.isdigit():
            conds.append(keys.c.id == int(ident))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(keys).where(sa.or_(*conds), keys.c.status != "deleted"))).all()
        return public_row(rows[0]) if len(rows) == 1 else None

    async def last_change(self) -> tuple[int, int, int]:
        """The newest change to any key, user or team: cached key records carry all three."""
        q = sa.select(*[sa.select(sa.func.coalesce(sa.func.max(t.c.updated_ms), 0)).scalar_subquery()
                        for t in (keys, users, teams)])
        async with self.engine.connect() as conn:
            row = (await conn.execute(q)).one()
        return (int(row[0]), int(row[1]), int(row[2]))
