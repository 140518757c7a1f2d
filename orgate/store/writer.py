"""The ledger writer: usage rows and settlements leave the request path and reach SQL in batches.

`record` only appends to a list. A background task flushes every `flush_interval_seconds` (or sooner when a
batch fills) in one transaction, renews this instance's in-flight reservations, and sweeps expired ones.
A failed flush keeps its rows for the next try; shutdown flushes whatever is left.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from orgate.config import Settings
from orgate.governance.leases import BudgetLeases, Ref, Release
from orgate.store.budget_repo import BudgetRepo

log = logging.getLogger("orgate.ledger")

class LedgerWriter:
    def __init__(self, repo: BudgetRepo, settings: Settings, leases: BudgetLeases | None = None) -> None:
        self.repo = repo
        self.leases = leases
        self.enabled = settings.ledger.enabled
        self.batch_size = settings.ledger.batch_size
        self.interval = settings.ledger.flush_interval_seconds
        self.sweep_every_s = settings.budgets.sweep_interval_seconds
        # Renew well within the TTL so a live instance's long streams never lose their reservation.
        self.renew_every_s = min(60.0, settings.budgets.reservation_ttl_seconds / 3)
        self._rows: list[dict[str, Any]] = []
        self._releases: list[Release] = []
        self._returned: list[tuple[Ref, str]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self.flushed_rows = 0

    def record(self, row: dict[str, Any], releases: list[Release]) -> None:
        if self.enabled:
            self._rows.append(row)
        self._releases.extend(releases)
        if len(self._rows) >= self.batch_size:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_renew = loop.time() + self.renew_every_s
        next_sweep = loop.time()
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()
            now = loop.time()
            try:
                if now >= next_renew:
                    next_renew = now + self.renew_every_s
                    await self.repo.renew()
                if now >= next_sweep:
                    next_sweep = now + self.sweep_every_s
                    n = await self.repo.sweep_expired()
                    if n:
                        log.warning("released %d expired budget reservations", n)
            except Exception:  # the database may be briefly unavailable; retry next round
                log.exception("reservation maintenance failed")

    async def flush(self) -> None:
        async with self._flush_lock:
            if self.leases is not None:
                self._returned.extend(self.leases.idle())
            if not self._rows and not self._releases and not self._returned:
                return
            rows, self._rows = self._rows, []
            releases, self._releases = self._releases, []
            returned, self._returned = self._returned, []
            try:
                await self.repo.flush(rows, releases, returned)
                self.flushed_rows += len(rows)
            except Exception:
                log.exception("ledger flush failed; %d rows kept for retry", len(rows))
                self._rows[:0] = rows
                self._releases[:0] = releases
                self._returned[:0] = returned

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        await self.flush()
