"""A fresh PostgreSQL database per test session on the machine's server (127.0.0.1:5432, trust auth)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator

import asyncpg

ADMIN_DSN = os.environ.get("ORGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


async def _exec(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def available() -> bool:
    try:
        asyncio.run(_exec("SELECT 1"))
        return True
    except Exception:
        return False


def create_database() -> str:
    name = "orgate_t_" + uuid.uuid4().hex[:12]
    asyncio.run(_exec(f'CREATE DATABASE "{name}"'))
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + name


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    asyncio.run(_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def database_url(kind: str) -> Iterator[str | None]:
    """None (the gateway's default SQLite) for "sqlite"; a fresh PostgreSQL database, dropped after, for
    "postgres". Skips only where no PostgreSQL runs (CI has one)."""
    if kind == "sqlite":
        yield None
        return
    import pytest

    if not available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)
