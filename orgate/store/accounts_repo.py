"""Users and teams in SQL: create, read, update, membership, and which keys belong to them.

Both tables share the budget columns of keys (held with leases the same way, store/budget_repo.py). No
HTTP and no business rules beyond the columns: the admin API and the CLI validate before calling here.
Every change bumps `updated_ms`, which the key cache watches (keyauth.py): a disabled user or team stops
its keys within the same second a disabled key does.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from orgate.governance.budget import period_start
from orgate.governance.keys import now_ms
from orgate.store.keys_repo import public_row
from orgate.store.schema import keys, team_members, teams, users

COMMON = ("name", "status", "budget_micros", "budget_period", "allowed_models", "rpm", "tpm", "metadata")
UPDATABLE = {"team": COMMON, "user": (*COMMON, "email", "external_id", "default_team_id")}
TABLES = {"team": teams, "user": users}


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    for c in ("allowed_models", "metadata"):
        if values.get(c) is not None:
            values[c] = orjson.dumps(values[c]).decode()
    return values


def public(row: Any) -> dict[str, Any]:
    d = {str(k): v for k, v in row._mapping.items()}  # plain str keys: orjson refuses SQLAlchemy's quoted_name
    for c in ("allowed_models", "metadata"):
        d[c] = orjson.loads(d[c]) if d.get(c) else None
    return d


class AccountsRepo:
    """One repository for both levels: `level` is "user" or "team"."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self, level: str, **fields: Any) -> dict[str, Any]:
        t = TABLES[level]
        now = now_ms()
        values = _encode({k: v for k, v in fields.items() if k in UPDATABLE[level] and v is not None})
        values.setdefault("budget_period", "none")
        values["period_start_ms"] = period_start(values["budget_period"])
        async with self.engine.begin() as conn:
            res = await conn.execute(t.insert().values(created_ms=now, updated_ms=now, **values))
            new_id = res.inserted_primary_key[0]
            if level == "user" and values.get("default_team_id"):
                await _join(conn, values["default_team_id"], new_id)
        row = await self.get(level, new_id)
        assert row is not None
        return row

    async def get(self, level: str, ident: int) -> dict[str, Any] | None:
        t = TABLES[level]
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(t).where(t.c.id == ident))).first()
        return public(row) if row else None

    async def find(self, level: str, ident: str) -> dict[str, Any] | None:
        """By numeric id, name, or (users) email or external id: for the CLI."""
        t = TABLES[level]
        conds = [t.c.name == ident]
        if level == "user":
            conds += [t.c.email == ident, t.c.external_id == ident]
        if ident.isdigit():
            conds.append(t.c.id == int(ident))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(t).where(sa.or_(*conds)))).all()
        return public(rows[0]) if len(rows) == 1 else None

    async def list(self, level: str, *, limit: int = 100, offset: int = 0,
                   search: str | None = None) -> tuple[list[dict[str, Any]], int]:
        t = TABLES[level]
        q, cq = sa.select(t), sa.select(sa.func.count()).select_from(t)
        if search:
            cond = t.c.name.ilike(f"%{search}%")
            if level == "user":
                cond = sa.or_(cond, t.c.email.ilike(f"%{search}%"))
            q, cq = q.where(cond), cq.where(cond)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.order_by(t.c.id).limit(limit).offset(offset))).all()
            total = (await conn.execute(cq)).scalar_one()
        return [public(r) for r in rows], int(total)

    async def update(self, level: str, ident: int, **fields: Any) -> dict[str, Any] | None:
        t = TABLES[level]
        values = _encode({k: v for k, v in fields.items() if k in UPDATABLE[level]})
        if "budget_period" in values:
            values["period_start_ms"] = period_start(values["budget_period"])
        values["updated_ms"] = now_ms()
        async with self.engine.begin() as conn:
            if (await conn.execute(t.update().where(t.c.id == ident).values(**values))).rowcount == 0:
                return None
            if level == "user" and values.get("default_team_id"):
                await _join(conn, values["default_team_id"], ident)
        return await self.get(level, ident)

    # -- membership ----------------------------------------------------------------------------------------
    async def add_member(self, team_id: int, user_id: int) -> None:
        async with self.engine.begin() as conn:
            await _join(conn, team_id, user_id)

    async def remove_member(self, team_id: int, user_id: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(team_members.delete().where(team_members.c.team_id == team_id,
                                                           team_members.c.user_id == user_id))
            # the user's default team is no longer theirs: forget it (their keys keep their team until moved)
            await conn.execute(users.update().where(users.c.id == user_id, users.c.default_team_id == team_id)
                               .values(default_team_id=None, updated_ms=now_ms()))

    async def is_member(self, team_id: int, user_id: int) -> bool:
        q = sa.select(team_members.c.team_id).where(team_members.c.team_id == team_id,
                                                    team_members.c.user_id == user_id)
        async with self.engine.connect() as conn:
            return (await conn.execute(q)).first() is not None

    async def members(self, team_id: int) -> list[dict[str, Any]]:
        q = (sa.select(users).select_from(users.join(team_members, team_members.c.user_id == users.c.id))
             .where(team_members.c.team_id == team_id).order_by(users.c.id))
        async with self.engine.connect() as conn:
            return [public(r) for r in (await conn.execute(q)).all()]

    async def teams_of(self, user_id: int) -> list[dict[str, Any]]:
        q = (sa.select(teams).select_from(teams.join(team_members, team_members.c.team_id == teams.c.id))
             .where(team_members.c.user_id == user_id).order_by(teams.c.id))
        async with self.engine.connect() as conn:
            return [public(r) for r in (await conn.execute(q)).all()]

    async def keys_of(self, level: str, ident: int) -> list[dict[str, Any]]:
        col = keys.c.user_id if level == "user" else keys.c.team_id
        q = sa.select(keys).where(col == ident, keys.c.status != "deleted").order_by(keys.c.id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [public_row(r) for r in rows]


async def _join(conn: Any, team_id: int, user_id: int) -> None:
    exists = (await conn.execute(sa.select(team_members.c.team_id).where(
        team_members.c.team_id == team_id, team_members.c.user_id == user_id))).first()
    if exists is None:
        await conn.execute(team_members.insert().values(team_id=team_id, user_id=user_id, created_ms=now_ms()))
