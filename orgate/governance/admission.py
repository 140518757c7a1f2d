"""Budget admission near the limit: bound with the provider's exact token count, wait for in-flight requests.

The byte bound (governance/budget.py) counts one token per request byte at the most expensive input class:
about four times a real prompt's tokens. Far from the limit that only makes the lease a little larger. Near
it, it refuses requests that would fit, and every in-flight request holds its worst case, so a burst is
refused for budget that is only reserved. So when the leases refuse a request:

1. orgate asks the provider's token-counting endpoint for the request's input tokens (free, never billed,
   remembered per body hash) and bounds the input with that count, plus a margin (COUNT_MARGIN) because
   Anthropic calls the count an estimate that may differ slightly from what the request is billed;
2. if the request still does not fit, but would fit once the requests in flight settled (the budget minus
   what is already *spent* leaves room), it waits for them, at most `budgets.settle_wait_seconds`, woken by
   each local settlement and polling the database for other instances' (their idle leases go back after
   `lease_hold_seconds`);
3. otherwise it is refused at once, naming the level.

Admission itself is still the leases' conditional update: `spent + reserved <= budget` holds at every level,
so the hard cap is unchanged; only the bound is tighter and a refusal is deferred while it may turn to a fit.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from orgate.governance import budget
from orgate.governance.leases import BudgetLeases, Cap, Refused, Ticket
from orgate.governance.pricing import PER_MILLION, Rates

COUNT_MARGIN_PERCENT = 2  # the count is an estimate: bound with a little more
COUNT_MARGIN_TOKENS = 64
POLL_SECONDS = 0.5  # how often a waiting request looks again without a local settlement
VIEW_SECONDS = 0.25  # a level's stored budget/spend/reserved is re-read at most this often, for all waiters
MAX_VIEWS = 4096  # cached views kept before the cache is emptied (levels x periods; old periods are never read again)

Counter = Callable[[], Awaitable[int | None]]


class TokenCounts:
    """Input-token counts by body hash: a body is counted once, however many times it is refused."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._counts: OrderedDict[bytes, int] = OrderedDict()
        self.calls = 0  # counting requests made to providers

    async def get(self, key: bytes, count: Counter) -> int | None:
        digest = hashlib.sha256(key).digest()
        hit = self._counts.get(digest)
        if hit is not None:
            self._counts.move_to_end(digest)
            return hit
        self.calls += 1
        tokens = await count()
        if tokens is not None:
            self._counts[digest] = tokens
            if len(self._counts) > self.size:
                self._counts.popitem(last=False)
        return tokens


def counted_bound(tokens: int, raw: bytes, max_tokens: int, rates: Rates) -> budget.CostBound:
    """The worst case with the input known to about a token, still at the most expensive input class."""
    rates = rates.ceiling
    bounded = tokens + tokens * COUNT_MARGIN_PERCENT // 100 + COUNT_MARGIN_TOKENS
    rate = budget.input_rate_for(raw, rates)
    return budget.CostBound(-(-bounded * rate // PER_MILLION), rates.output, max_tokens)


class Admission:
    def __init__(self, leases: BudgetLeases, wait_seconds: float, count_near_limit: bool = True) -> None:
        self.leases = leases
        self.wait_seconds = wait_seconds
        self.count_near_limit = count_near_limit
        self.counts = TokenCounts()
        self._settled = asyncio.Event()
        self._view_cache: dict[tuple[object, int], tuple[float, tuple[int | None, int, int]]] = {}
        self._view_locks: dict[tuple[object, int], asyncio.Lock] = {}

    def settled(self) -> None:
        """A request settled on this instance: waiters look again."""
        self._settled.set()

    async def admit(self, caps: Sequence[Cap], raw: bytes, max_tokens: int, rates: Rates,
                    count: Counter | None) -> tuple[Ticket, int] | Refused:
        b = budget.bound(raw, max_tokens, rates)
        admitted = await self.leases.admit(caps, b)
        if not isinstance(admitted, Refused):
            return admitted
        floor = budget.CostBound(0, b.output_rate, max_tokens)  # the request without any input
        if any(floor.fit_max_tokens((limit or 0) - spent) is None for limit, spent, _ in await self._views(caps)):
            return admitted  # spent out: nothing to count, nothing to wait for
        if self.count_near_limit and count is not None:
            tokens = await self.counts.get(raw, count)
            if tokens is not None:
                exact = counted_bound(tokens, raw, max_tokens, rates)
                if exact.input_micros < b.input_micros:
                    b = exact
                    admitted = await self.leases.admit(caps, b)
        deadline = time.monotonic() + self.wait_seconds
        while isinstance(admitted, Refused) and time.monotonic() < deadline:
            views = await self._views(caps)
            if any(b.fit_max_tokens((limit or 0) - spent) is None for limit, spent, _ in views):
                break  # it would not fit even with nothing in flight: refuse now
            self._settled.clear()
            try:
                await asyncio.wait_for(self._settled.wait(), min(POLL_SECONDS, deadline - time.monotonic()))
            except TimeoutError:
                pass
            views = await self._views(caps)
            if all(b.fit_max_tokens(self._free(cap, view)) is not None for cap, view in zip(caps, views, strict=True)):
                admitted = await self.leases.admit(caps, b)  # only when it may fit: no herd of lease growths
        return admitted

    def _free(self, cap: Cap, view: tuple[int | None, int, int]) -> int:
        """What this instance could take for a level now: unreserved budget plus its own lease's slack."""
        limit, spent, reserved = view
        lease = self.leases.lease_of(cap.ref)
        slack = lease.held - lease.in_flight if lease is not None else 0
        return (limit or 0) - spent - reserved + slack

    async def _views(self, caps: Sequence[Cap]) -> list[tuple[int | None, int, int]]:
        """(budget, spent, reserved) per level, read at most once per VIEW_SECONDS for all requests together
        (one read in flight per level: a burst of refusals must not empty the database pool)."""
        out = []
        if len(self._view_cache) > MAX_VIEWS:  # one entry per level and period: past periods go now and then
            self._view_cache.clear()
            self._view_locks = {k: v for k, v in self._view_locks.items() if v.locked()}
        for cap in caps:
            key = (cap.ref, cap.period_start_ms)
            hit = self._view_cache.get(key)
            if hit is None or time.monotonic() - hit[0] > VIEW_SECONDS:
                async with self._view_locks.setdefault(key, asyncio.Lock()):
                    hit = self._view_cache.get(key)
                    if hit is None or time.monotonic() - hit[0] > VIEW_SECONDS:
                        hit = (time.monotonic(), await self.leases.store.remaining(cap.ref, cap.period_start_ms))
                        self._view_cache[key] = hit
            out.append(hit[1])
        return out
