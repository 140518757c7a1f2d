"""The ledger writer: usage rows and settlements leave the request path and reach SQL in batches.

`record` only appends to a list. A background task flushes every `flush_interval_seconds` (or sooner when a
batch fills) in one transaction, renews this instance's in-flight reservations, and sweeps expired ones.
A failed flush keeps its rows for the next try; shutdown flushes whatever is left.

What SIGKILL (or a crash) costs, since nothing in memory survives it: the rows and settlements recorded
since the last flush (at most `flush_interval_seconds`, 0.5 s, plus a flush in flight), and this instance's
budget leases stay reserved until they expire, `reservation_ttl_seconds` (30 s) after their last renewal;
any instance's sweeper (every `sweep_interval_seconds`, 5 s) then gives them back. A sweeper sweeps only
once its own database access has worked for a whole TTL: after an outage of the shared database every live
instance has renewed its leases before anyone may take them for expired.

Rows are tuples in the ledger's column order (store/ledger_rows.py), fitted to their columns as they are
queued (store/row_bounds.py). Should the database still refuse
a batch while it is reachable, the settlements land on their own and the rows are halved until the refused
ones stand alone: each is recorded in ledger_rejects with its error and logged at ERROR, every other row lands.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from orgate.config import Settings
from orgate.governance.leases import BudgetLeases, Ref, Release
from orgate.store import ledger_rows
from orgate.store.budget_repo import BudgetRepo
from orgate.store.ledger_rows import LedgerRow
from orgate.store.outage import is_outage

log = logging.getLogger("orgate.ledger")
REQUEST_ID = ledger_rows.INDEX["request_id"]


class LedgerWriter:
    def __init__(self, repo: BudgetRepo, settings: Settings, leases: BudgetLeases | None = None) -> None:
        self.repo = repo
        self.leases = leases
        self.enabled = settings.ledger.enabled
        self.batch_size = settings.ledger.batch_size
        self.interval = settings.ledger.flush_interval_seconds
        self.sweep_every_s = settings.budgets.sweep_interval_seconds
        # Renew well within the TTL so a live instance's long streams never lose their reservation.
        self.ttl_s = settings.budgets.reservation_ttl_seconds
        self.renew_every_s = min(60.0, self.ttl_s / 3)
        self._rows: list[LedgerRow] = []
        self._releases: list[Release] = []
        self._returned: list[tuple[Ref, str]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self.flushed_rows = 0
        self.rejected_rows = 0
        self.on_flush: Callable[[float, bool, int], None] | None = None  # (seconds, ok, rows still waiting)
        self.on_settled: Callable[[set[tuple[str, int]]], None] | None = None  # (level, id) a flush charged

    def record(self, row: LedgerRow | dict[str, Any], releases: list[Release]) -> None:
        """Queue a row (a tuple in column order, or by column name) and the budget settlements it carries."""
        if self.enabled:
            self._rows.append(ledger_rows.fit(row if type(row) is tuple else ledger_rows.from_mapping(row)))
        self._releases.extend(releases)
        if len(self._rows) >= self.batch_size:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_renew = next_sweep = loop.time()
        healthy_since = loop.time()  # a new instance may have started inside an outage: it waits a TTL too
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
            if not await self.flush():
                healthy_since = None
            now = loop.time()
            try:
                if now >= next_renew or healthy_since is None:
                    next_renew = now + self.renew_every_s
                    await self.repo.renew()
                    healthy_since = now if healthy_since is None else healthy_since
                if now >= next_sweep and healthy_since is not None and now - healthy_since >= self.ttl_s:
                    next_sweep = now + self.sweep_every_s
                    n = await self.repo.sweep_expired()
                    if n:
                        log.warning("released %d expired budget reservations", n)
            except Exception:  # the database may be briefly unavailable; retry next round
                healthy_since = None
                log.exception("reservation maintenance failed")

    async def flush(self) -> bool:
        """Write what is queued; False when the database could not take it (kept for the next try)."""
        async with self._flush_lock:
            if self.leases is not None:
                self._returned.extend(self.leases.idle())
            if not self._rows and not self._releases and not self._returned:
                return True
            rows, self._rows = self._rows, []
            releases, self._releases = self._releases, []
            returned, self._returned = self._returned, []
            started = time.perf_counter()
            ok = await self._land(rows, releases, returned)
            if self.on_flush is not None:
                self.on_flush(time.perf_counter() - started, ok, len(self._rows))
            if ok and self.on_settled is not None:
                spent = {r.ref for r in releases if r.cost}  # (level, id): keys, users and teams
                if spent:
                    self.on_settled(spent)
            return ok

    async def _land(self, rows: list[LedgerRow], releases: list[Release], returned: list[Any]) -> bool:
        """One flush; False when everything was kept for the next try."""
        try:
            await self.repo.flush(rows, releases, returned)
            self.flushed_rows += len(rows)
            return True
        except Exception as e:
            # A reachable database refused the batch: settle budgets on their own (they must never wait on
            # a row), then find the rows at fault.
            isolate = bool(rows) and not is_outage(e) and await self._try(
                lambda: self.repo.flush([], releases, returned))
            if not isolate:
                log.exception("ledger flush failed; %d rows kept for retry", len(rows))
                self._rows[:0] = rows
                self._releases[:0] = releases
                self._returned[:0] = returned
                return False
        await self._isolate(rows)
        return True

    async def _try(self, fn: Any) -> bool:
        try:
            await fn()
            return True
        except Exception:
            return False

    async def _isolate(self, rows: list[LedgerRow]) -> None:
        """Land `rows` in halves until each refused row stands alone, then record it as rejected."""
        try:
            await self.repo.flush(rows, [])
            self.flushed_rows += len(rows)
            return
        except Exception as e:
            if is_outage(e):
                self._rows[:0] = rows  # the database went away meanwhile: retry them all next round
                return
            if len(rows) > 1:
                half = len(rows) // 2
                await self._isolate(rows[:half])
                await self._isolate(rows[half:])
                return
            cause = getattr(e, "orig", None) or e  # the driver's words, without SQLAlchemy's echo of the SQL
            error = f"{type(cause).__name__}: {cause}"
        row = rows[0]
        log.error("ledger row refused by the database, recorded in ledger_rejects: request %s: %s",
                  row[REQUEST_ID], error)
        if await self._try(lambda: self.repo.reject(row, error)):
            self.rejected_rows += 1
        else:
            self._rows.append(row)  # not even the reject table took it: keep it for the next round

    async def close(self) -> None:
        if self._task is not None:
            # Never cancel a flush half-way: it has taken its rows off the queue, and they would be lost (seen
            # with two workers flushing into one SQLite file at shutdown, where a flush waits for the lock).
            async with self._flush_lock:
                self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        await self.flush()
