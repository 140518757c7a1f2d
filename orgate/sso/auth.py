"""The authentication seam: a gateway-issued bearer token resolves to the same principal as an API key.

GatewayAuth stands where KeyAuth stood (`app.auth`) and keeps its interface. A credential shaped like a JWT
is looked up as a gateway token: its SHA-256 must be a live access token (unrevoked, unexpired) of an active
person, and the answer is that person's internal key record, so everything after authentication (model
access, budget, limits, routing, ledger) is the key path unchanged. Anything else goes to KeyAuth.

Bound on disabling: results are cached like keys, and a poll every second drops the cache when the keys,
people or tokens tables change, so a disabled person, a revoked token or a disabled key is refused within
about a second on every instance, as for a disabled key.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import sqlalchemy as sa

from orgate.errors import AuthenticationFailed, PermissionDenied
from orgate.governance.keys import KeyRecord, hash_key, now_ms
from orgate.keyauth import POLL_S, KeyAuth, extract_key
from orgate.sso.service import SsoService
from orgate.sso.tokens import looks_like_gateway_token
from orgate.store.schema import keys

Person = tuple[KeyRecord, dict[str, Any]]


class GatewayAuth:
    def __init__(self, keys: KeyAuth, service: SsoService) -> None:
        self.keys = keys
        self.repo = keys.repo
        self.service = service
        self.store = service.store
        self._cache: dict[str, tuple[Person | None, float, int]] = {}  # hash -> (person, cached until, exp ms)
        self._seen = (0, 0)
        self._sessions: dict[tuple[str, int], dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    async def authenticate(self, headers: dict[str, str]) -> KeyRecord:
        cred = extract_key(headers)
        if cred and looks_like_gateway_token(cred):
            record, user = await self.person(cred)
            session = headers.get("x-claude-code-session-id")
            if session:
                self._note_session(session[:100], user)
            return record
        return await self.keys.authenticate(headers)

    def _note_session(self, session: str, user: dict[str, Any]) -> None:
        """Counted in memory, flushed by the poll: no database write on the request path."""
        ident = (session, user["id"])
        now = now_ms()
        row = self._sessions.get(ident)
        if row is None:
            if len(self._sessions) >= 10_000:
                return  # bounded; the next flush empties it
            row = self._sessions[ident] = {"session_id": session, "sso_user_id": user["id"], "team": user["team"],
                                           "first_ms": now, "last_ms": now, "requests": 0}
        row["last_ms"] = now
        row["requests"] += 1

    async def person(self, token: str) -> Person:
        """The key and the person behind a gateway access token, or the error the key path would give."""
        found = await self._lookup(token)
        if found is None:
            raise AuthenticationFailed("Invalid or expired gateway token: run /login again.")
        record, user = found
        if user["status"] != "active":
            raise PermissionDenied("Your account on this gateway is disabled.")
        record.check_usable()
        return found

    async def lookup(self, credential: str) -> KeyRecord | None:
        if looks_like_gateway_token(credential):
            found = await self._lookup(credential)
            return found[0] if found else None
        return await self.keys.lookup(credential)

    async def _lookup(self, token: str) -> Person | None:
        h = hash_key(token)
        now = time.monotonic()
        hit = self._cache.get(h)
        if hit is not None and hit[1] > now:
            return hit[0] if hit[2] > now_ms() else None
        person, exp = await self._load(h)
        self._cache[h] = (person, now + (self.keys.ttl if person else 5.0), exp)
        if len(self._cache) > 100_000:
            self._cache.clear()
        return person

    async def _load(self, h: str) -> tuple[Person | None, int]:
        row = await self.store.token(h)
        if row is None or row["kind"] != "access" or row["revoked"] or row["expires_ms"] <= now_ms():
            return None, 0
        user = await self.store.user(row["sso_user_id"])
        key_hash = await self._key_hash(row["key_id"])
        record = await self.repo.by_hash(key_hash) if key_hash else None
        if user is None or record is None:
            return None, 0
        return (record, user), row["expires_ms"]

    async def _key_hash(self, key_id: int) -> str | None:
        async with self.repo.engine.connect() as conn:
            return (await conn.execute(sa.select(keys.c.hash).where(keys.c.id == key_id))).scalar_one_or_none()

    def invalidate(self) -> None:
        self._cache.clear()
        self.keys.invalidate()

    def start(self) -> None:
        self.keys.start()
        self._task = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            with contextlib.suppress(Exception):
                await self.flush_sessions()
                seen = (await self.store.last_change(), await self.repo.last_change())
                if seen != self._seen:
                    self._seen = seen
                    self._cache.clear()

    async def flush_sessions(self) -> None:
        rows, self._sessions = list(self._sessions.values()), {}
        await self.store.add_sessions(rows)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush_sessions()
        await self.keys.close()
        await self.service.aclose()
