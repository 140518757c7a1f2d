"""Engine creation and migrations for SQLite (default) and PostgreSQL.

Operators write plain URLs (`sqlite:///path`, `postgresql://user@host/db`); the async drivers are chosen
here. SQLite runs in WAL mode with a busy timeout so the ledger writer and request-path updates from
several processes wait for each other instead of failing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def async_url(url: str) -> str:
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url[len("sqlite:") :]
    if url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    return url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str) -> AsyncEngine:
    if is_sqlite(url):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(async_url(url), connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # Bounded waits: a database that is down or hung answers within seconds as an outage (503, retry) instead
    # of holding requests for minutes: connect 5 s, a pool slot 5 s, any statement 10 s.
    return create_async_engine(async_url(url), pool_size=10, max_overflow=20, pool_pre_ping=True, pool_timeout=5,
                               connect_args={"timeout": 5, "command_timeout": 10})


def _alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Run migrations to head (blocking; call before the event loop starts or via to_thread)."""
    from alembic import command

    if is_sqlite(url):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(_alembic_config(url), "head")


async def migrate_in_child(url: str) -> None:
    """Migrations to head in a child process (see store/migrate.py); raises with its output on failure."""
    import sys

    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "orgate.store.migrate", url,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"database migration failed: {out.decode(errors='replace')[-2000:]}")


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))


def head_revision() -> str | None:
    """The newest migration id, read from the version files (no Alembic import: the server process keeps
    its memory small; store/migrate.py runs Alembic in a child)."""
    import re

    revs: set[str] = set()
    downs: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text()
        rev = re.search(r'^revision\s*=\s*"([^"]+)"', text, re.M)
        down = re.search(r'^down_revision\s*=\s*"([^"]+)"', text, re.M)
        if rev:
            revs.add(rev.group(1))
        if down:
            downs.add(down.group(1))
    heads = sorted(revs - downs)
    return heads[0] if len(heads) == 1 else None


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()
