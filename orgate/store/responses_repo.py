"""Stored responses (response_store table) in SQL: put, get for the owning key, drop the expired."""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from orgate.store.schema import response_store


class ResponsesRepo:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def put(self, response_id: str, key_id: int, items: list[Any], now_ms: int, expires_ms: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(response_store).values(
                id=response_id, key_id=key_id, created_ms=now_ms, expires_ms=expires_ms,
                items_json=orjson.dumps(items).decode()))

    async def get(self, response_id: str, key_id: int, now_ms: int) -> list[Any] | None:
        """The stored items, or None when absent, expired or another key's (indistinguishable on purpose)."""
        q = sa.select(response_store.c.items_json).where(
            response_store.c.id == response_id, response_store.c.key_id == key_id,
            response_store.c.expires_ms > now_ms)
        async with self.engine.connect() as conn:
            raw = (await conn.execute(q)).scalar_one_or_none()
        return orjson.loads(raw) if raw is not None else None

    async def purge(self, now_ms: int) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(sa.delete(response_store).where(response_store.c.expires_ms <= now_ms))
        return result.rowcount or 0
