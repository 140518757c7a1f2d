"""Runs a real orgate process on a real port for tests, and reads its database directly."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from orgate.store.db import make_engine, upgrade
from orgate.store.keys_repo import KeysRepo
from tests.fakes.anthropic_fake import UPSTREAM_KEY

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
ADMIN_PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    def __init__(self, upstream_url: str, *, database_url: str | None = None, env: dict[str, str] | None = None,
                 data_dir: str | None = None, command: list[str] | None = None) -> None:
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="orgate-test-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url or f"sqlite:///{Path(self.data_dir) / 'orgate.db'}"
        self.env = {
            **os.environ,
            "ORGATE_DATA_DIR": self.data_dir,
            "ORGATE_DATABASE_URL": self.database_url,
            "ORGATE_SERVER__PORT": str(self.port),
            "ORGATE_PROVIDERS__ANTHROPIC__BASE_URL": upstream_url,
            "ORGATE_LEDGER__FLUSH_INTERVAL_SECONDS": "0.05",
            "ORGATE_ROUTING__BACKOFF_BASE_SECONDS": "0.01",
            "ORGATE_ADMIN__TOKEN": ADMIN_TOKEN,
            "ORGATE_ADMIN__PASSWORD": ADMIN_PASSWORD,
            "ANTHROPIC_API_KEY": UPSTREAM_KEY,
            # Translation tests compare exact upstream bodies; tests/test_auto_cache.py runs the default (on).
            "ORGATE_CACHING__AUTO": "false",
            **(env or {}),
        }
        self.env.pop("ORGATE_CONFIG", None)
        # another environment's `orgate` (e.g. a fresh venv) runs from the data dir so this checkout is not on its path
        self.command = command or [sys.executable, "-m", "orgate", "serve"]
        self.cwd = self.data_dir if command else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(self.data_dir) / "gateway.log"

    def start(self, timeout: float = 90, retry_port: bool = True) -> Gateway:
        upgrade(self.database_url)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command, env=self.env, cwd=self.cwd,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                log = self.log_path.read_text()
                if "address already in use" in log.lower() and retry_port:
                    # free_port() released the port before orgate bound it and something else took it
                    self.port = free_port()
                    self.url = f"http://127.0.0.1:{self.port}"
                    self.env["ORGATE_SERVER__PORT"] = str(self.port)
                    self._log.close()
                    return self.start(timeout, retry_port=False)
                raise RuntimeError(f"orgate exited: {log[-3000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("orgate did not start: " + self.log_path.read_text()[-3000:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    # -- direct database access (the test's own view; the gateway only sees it through SQL) ---------------
    def _run(self, coro_fn: Any) -> Any:
        async def main() -> Any:
            engine = make_engine(self.database_url)
            try:
                return await coro_fn(engine)
            finally:
                await engine.dispose()

        return asyncio.run(main())

    def create_key(self, name: str = "test", **fields: Any) -> str:
        async def go(engine: Any) -> str:
            key, _ = await KeysRepo(engine).create(prefix="sk-ant-", name=name, **fields)
            return key

        return self._run(go)

    def create_account(self, level: str, **fields: Any) -> int:
        """A user or team straight in the database (as the CLI would); returns its id."""
        from orgate.store.accounts_repo import AccountsRepo

        async def go(engine: Any) -> int:
            return (await AccountsRepo(engine).create(level, **fields))["id"]

        return self._run(go)

    def update_account(self, level: str, ident: int, **fields: Any) -> None:
        from orgate.store.accounts_repo import AccountsRepo

        async def go(engine: Any) -> None:
            await AccountsRepo(engine).update(level, ident, **fields)

        self._run(go)

    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async def go(engine: Any) -> list[dict[str, Any]]:
            async with engine.connect() as conn:
                return [dict(r._mapping) for r in (await conn.execute(sa.text(sql), params)).all()]

        return self._run(go)

    def key_id(self, key: str) -> int:
        """The id of a key made by create_key: its ledger rows are exactly its test's (the `key` fixture is
        one new key per test), whatever an earlier test's rows still on their way do."""
        from orgate.governance.keys import hash_key

        return int(self.query("SELECT id FROM keys WHERE hash = :h", h=hash_key(key))[0]["id"])

    def ledger_mark(self, settle: float = 3) -> int:
        """The newest ledger row's id once no row has landed for `settle` flush intervals: pass it as `after=`
        to wait for the rows of what follows only. A session's gateway is shared and a row gets its id when it
        lands, at the next flush: an earlier test's last row can land after a mark taken at once. Waiting out
        the flushes narrows that; filtering by the test's own key (key_id) or request id closes it."""
        interval = float(self.env.get("ORGATE_LEDGER__FLUSH_INTERVAL_SECONDS", 0.5))
        mark = int(self.query("SELECT COALESCE(MAX(id), 0) AS m FROM ledger")[0]["m"])
        quiet_since, deadline = time.time(), time.time() + 5
        while time.time() - quiet_since < settle * interval and time.time() < deadline:
            time.sleep(interval / 2)
            now = int(self.query("SELECT COALESCE(MAX(id), 0) AS m FROM ledger")[0]["m"])
            if now != mark:
                mark, quiet_since = now, time.time()
        return mark

    def ledger(self, min_rows: int = 1, timeout: float = 10, after: int = 0, **where: Any) -> list[dict[str, Any]]:
        cond = " AND ".join(["id > :after", *(f"{k} = :{k}" for k in where)])
        deadline = time.time() + timeout
        rows: list[dict[str, Any]] = []
        while time.time() < deadline:
            rows = self.query(f"SELECT * FROM ledger WHERE {cond} ORDER BY id", after=after, **where)
            if len(rows) >= min_rows:
                return rows
            time.sleep(0.05)
        raise AssertionError(f"expected {min_rows} ledger rows for {where}, found {len(rows)}")
