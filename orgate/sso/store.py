"""SQL for sign-in: people, device grants, browser logins, token families, managed settings, telemetry.

No HTTP and no policy here. State changes that race (two polls, two refreshes, approve vs expire) are single
conditional UPDATEs, so the database decides who won on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from orgate.governance.keys import now_ms
from orgate.sso.schema import (
    sso_device_grants,
    sso_families,
    sso_logins,
    sso_managed_settings,
    sso_sessions,
    sso_telemetry,
    sso_tokens,
    sso_users,
)


def _insert(conn: Any, table: sa.Table) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _plain(row: Any) -> dict[str, Any]:
    # str(): SQLAlchemy's quoted_name keys are a str subclass that orjson refuses
    return {str(k): v for k, v in row._mapping.items()}


class SsoStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def _one(self, q: Any) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(q)).first()
        return _plain(row) if row else None

    async def _all(self, q: Any) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            return [_plain(r) for r in (await conn.execute(q)).all()]

    async def _write(self, stmt: Any) -> int:
        async with self.engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount

    # -- people ------------------------------------------------------------------------------------------
    async def user_by_subject(self, issuer: str, subject: str) -> dict[str, Any] | None:
        return await self._one(sa.select(sso_users).where(sso_users.c.issuer == issuer,
                                                           sso_users.c.subject == subject))

    async def user(self, user_id: int) -> dict[str, Any] | None:
        return await self._one(sa.select(sso_users).where(sso_users.c.id == user_id))

    async def users(self) -> list[dict[str, Any]]:
        return await self._all(sa.select(sso_users).order_by(sso_users.c.id))

    async def add_user(self, **values: Any) -> dict[str, Any]:
        now = now_ms()
        values["groups"] = orjson.dumps(list(values.get("groups") or ())).decode()
        async with self.engine.begin() as conn:
            res = await conn.execute(sso_users.insert().values(created_ms=now, updated_ms=now, last_login_ms=now,
                                                               **values))
            uid = res.inserted_primary_key[0]
        row = await self.user(uid)
        assert row is not None
        return row

    async def update_user(self, sso_user_id: int, /, **values: Any) -> None:
        if "groups" in values:
            values["groups"] = orjson.dumps(list(values["groups"] or ())).decode()
        await self._write(sso_users.update().where(sso_users.c.id == sso_user_id).values(updated_ms=now_ms(),
                                                                                           **values))

    # -- device grants -----------------------------------------------------------------------------------
    async def add_grant(self, device_hash: str, user_code: str, ttl_s: int, interval_s: int) -> None:
        now = now_ms()
        await self._write(sso_device_grants.insert().values(
            device_hash=device_hash, user_code=user_code, status="pending", created_ms=now,
            expires_ms=now + ttl_s * 1000, interval_s=interval_s))

    async def grant_by_code(self, user_code: str) -> dict[str, Any] | None:
        return await self._one(sa.select(sso_device_grants).where(sso_device_grants.c.user_code == user_code))

    async def grant(self, device_hash: str) -> dict[str, Any] | None:
        return await self._one(sa.select(sso_device_grants).where(sso_device_grants.c.device_hash == device_hash))

    async def decide_grant(self, user_code: str, status: str, sso_user_id: int | None,
                           idp_refresh: str | None = None) -> bool:
        """pending -> approved|denied, only while unexpired; False when another decision came first."""
        c = sso_device_grants.c
        return await self._write(sso_device_grants.update().where(
            c.user_code == user_code, c.status == "pending", c.expires_ms > now_ms()
        ).values(status=status, sso_user_id=sso_user_id, idp_refresh=idp_refresh)) == 1

    async def note_poll(self, device_hash: str, last_poll_ms: int, now: int, interval_s: int) -> bool:
        """Records this poll; False (slow down) when the previous one was less than `interval` ago."""
        c = sso_device_grants.c
        return await self._write(sso_device_grants.update().where(
            c.device_hash == device_hash, c.last_poll_ms == last_poll_ms,
            c.last_poll_ms <= now - interval_s * 1000 + 250,  # a little slack for client timer jitter
        ).values(last_poll_ms=now)) == 1

    async def slow_down(self, device_hash: str, now: int) -> None:
        c = sso_device_grants.c
        await self._write(sso_device_grants.update().where(c.device_hash == device_hash).values(
            interval_s=c.interval_s + 5, last_poll_ms=now))

    async def consume_grant(self, device_hash: str) -> bool:
        c = sso_device_grants.c
        return await self._write(sso_device_grants.update().where(
            c.device_hash == device_hash, c.status == "approved").values(status="consumed", idp_refresh=None)) == 1

    # -- browser logins ----------------------------------------------------------------------------------
    async def add_login(self, **values: Any) -> None:
        await self._write(sso_logins.insert().values(**values))

    async def take_login(self, state_hash: str) -> dict[str, Any] | None:
        """The login for this state, deleted as it is read: a state is good for one callback."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(sa.select(sso_logins).where(sso_logins.c.state_hash == state_hash))).first()
            if row is None:
                return None
            gone = await conn.execute(sso_logins.delete().where(sso_logins.c.state_hash == state_hash))
            if gone.rowcount != 1:
                return None
        return dict(row._mapping)

    async def sweep(self) -> None:
        now = now_ms()
        async with self.engine.begin() as conn:
            await conn.execute(sso_logins.delete().where(sso_logins.c.expires_ms < now))
            await conn.execute(sso_device_grants.delete().where(sso_device_grants.c.expires_ms < now - 86_400_000))
            await conn.execute(sso_tokens.delete().where(sso_tokens.c.expires_ms < now - 86_400_000))

    # -- tokens ------------------------------------------------------------------------------------------
    async def add_family(self, family_id: str, sso_user_id: int, idp_refresh: str | None) -> None:
        now = now_ms()
        await self._write(sso_families.insert().values(id=family_id, sso_user_id=sso_user_id,
                                                       idp_refresh=idp_refresh, created_ms=now, updated_ms=now))

    async def family(self, family_id: str) -> dict[str, Any] | None:
        return await self._one(sa.select(sso_families).where(sso_families.c.id == family_id))

    async def set_family_idp_refresh(self, family_id: str, sealed: str | None) -> None:
        await self._write(sso_families.update().where(sso_families.c.id == family_id).values(
            idp_refresh=sealed, updated_ms=now_ms()))

    async def add_tokens(self, rows: list[dict[str, Any]]) -> None:
        now = now_ms()
        async with self.engine.begin() as conn:
            await conn.execute(sso_tokens.insert(), [{"created_ms": now, "updated_ms": now, **r} for r in rows])

    async def token(self, token_hash: str) -> dict[str, Any] | None:
        return await self._one(sa.select(sso_tokens).where(sso_tokens.c.hash == token_hash))

    async def spend_refresh(self, token_hash: str) -> bool:
        """Marks a refresh token used; False when it was already used or revoked (a replay)."""
        c = sso_tokens.c
        now = now_ms()
        return await self._write(sso_tokens.update().where(
            c.hash == token_hash, c.kind == "refresh", c.used_ms.is_(None), c.revoked.is_(False)
        ).values(used_ms=now, updated_ms=now)) == 1

    async def revoke_family(self, family_id: str) -> None:
        await self._revoke(sso_families.c.id == family_id, sso_tokens.c.family_id == family_id)

    async def revoke_user(self, sso_user_id: int) -> None:
        await self._revoke(sso_families.c.sso_user_id == sso_user_id, sso_tokens.c.sso_user_id == sso_user_id)

    async def _revoke(self, families: Any, tokens: Any) -> None:
        now = now_ms()
        async with self.engine.begin() as conn:
            await conn.execute(sso_families.update().where(families).values(revoked=True, updated_ms=now))
            await conn.execute(sso_tokens.update().where(tokens).values(revoked=True, updated_ms=now))

    async def last_change(self) -> int:
        async with self.engine.connect() as conn:
            v = (await conn.execute(sa.select(sa.func.max(sso_tokens.c.updated_ms)))).scalar()
            u = (await conn.execute(sa.select(sa.func.max(sso_users.c.updated_ms)))).scalar()
        return max(int(v or 0), int(u or 0))

    # -- managed settings --------------------------------------------------------------------------------
    async def managed(self, scopes: list[str]) -> dict[str, dict[str, Any]]:
        rows = await self._all(sa.select(sso_managed_settings).where(sso_managed_settings.c.scope.in_(scopes)))
        return {r["scope"]: orjson.loads(r["settings"]) for r in rows}

    async def all_managed(self) -> dict[str, dict[str, Any]]:
        rows = await self._all(sa.select(sso_managed_settings).order_by(sso_managed_settings.c.scope))
        return {r["scope"]: orjson.loads(r["settings"]) for r in rows}

    async def put_managed(self, scope: str, settings: dict[str, Any]) -> None:
        async with self.engine.begin() as conn:
            stmt = _insert(conn, sso_managed_settings).values(scope=scope, settings=orjson.dumps(settings).decode(),
                                                              updated_ms=now_ms())
            await conn.execute(stmt.on_conflict_do_update(index_elements=["scope"], set_={
                "settings": stmt.excluded.settings, "updated_ms": stmt.excluded.updated_ms}))

    async def delete_managed(self, scope: str) -> bool:
        return await self._write(sso_managed_settings.delete().where(sso_managed_settings.c.scope == scope)) == 1

    # -- telemetry ---------------------------------------------------------------------------------------
    async def add_telemetry(self, day_ms: int, sso_user_id: int, team: str, values: dict[str, float]) -> None:
        if not values:
            return
        now = now_ms()
        rows = [{"day_ms": day_ms, "sso_user_id": sso_user_id, "team": team, "metric": m, "value": v,
                 "updated_ms": now} for m, v in sorted(values.items())]
        async with self.engine.begin() as conn:
            stmt = _insert(conn, sso_telemetry)
            await conn.execute(stmt.on_conflict_do_update(
                index_elements=["day_ms", "sso_user_id", "metric"],
                set_={"value": sso_telemetry.c.value + stmt.excluded.value, "updated_ms": stmt.excluded.updated_ms,
                      "team": stmt.excluded.team}), rows)

    async def telemetry(self, since_ms: int, by: str) -> list[dict[str, Any]]:
        """Sums per (user or team, metric) since a day."""
        t, u = sso_telemetry, sso_users
        group = [t.c.team] if by == "team" else [t.c.sso_user_id, u.c.email]
        q = (sa.select(*group, t.c.metric, sa.func.sum(t.c.value).label("value"))
             .select_from(t.join(u, u.c.id == t.c.sso_user_id))
             .where(t.c.day_ms >= since_ms).group_by(*group, t.c.metric).order_by(*group, t.c.metric))
        return await self._all(q)

    # -- sessions ----------------------------------------------------------------------------------------
    async def add_sessions(self, rows: list[dict[str, Any]]) -> None:
        """rows: session_id, sso_user_id, team, first_ms, last_ms, requests (added to what is stored)."""
        if not rows:
            return
        async with self.engine.begin() as conn:
            stmt = _insert(conn, sso_sessions)
            await conn.execute(stmt.on_conflict_do_update(
                index_elements=["session_id", "sso_user_id"],
                set_={"last_ms": stmt.excluded.last_ms, "requests": sso_sessions.c.requests + stmt.excluded.requests}),
                sorted(rows, key=lambda r: (r["session_id"], r["sso_user_id"])))

    async def sessions(self, since_ms: int, limit: int = 500) -> list[dict[str, Any]]:
        s, u = sso_sessions, sso_users
        return await self._all(sa.select(s, u.c.email).select_from(s.join(u, u.c.id == s.c.sso_user_id))
                               .where(s.c.last_ms >= since_ms).order_by(s.c.last_ms.desc()).limit(limit))
