"""Budget leases: the hard cap of every key, held without a database write per request.

Each instance holds, per key, a *lease*: an amount of the key's budget reserved in the database (one row in
`reservations`, counted in `keys.reserved_micros`) by the same atomic conditional UPDATE that used to
reserve each request. Requests are admitted against the lease in memory:

    in_flight (sum of admitted requests' cost bounds) <= held (the lease)

so the database invariant `spent + reserved <= budget` (every instance's lease is in `reserved`) still
bounds the key's spend, across instances. Only when a lease runs short does admission touch the database:
it grows the lease by a chunk (a twentieth of the budget, or just what the request needs near the limit).
Settlement turns part of the lease into spend (written with the ledger, in batches); a lease left idle for
`lease_hold_seconds` is returned so other instances can use that budget. A crashed instance's lease stops
being renewed and expires like any reservation.

Near the limit a lease held by another instance can make a request wait for budget that is idle there: at
most one chunk, for at most the hold time. The guarantee is unchanged; only how close to the last cent a
key can spend while its traffic moves between instances.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Protocol

from orgate.governance import budget

CHUNK_DIVISOR = 20


class LeaseStore(Protocol):
    async def grow_lease(self, key_id: int, lease_id: str, amount: int, period_start_ms: int) -> bool: ...

    async def remaining(self, key_id: int, period_start_ms: int) -> tuple[int | None, int, int]: ...


@dataclass(slots=True)
class Lease:
    id: str
    held: int = 0
    in_flight: int = 0
    idle_since: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True, slots=True)
class Ticket:
    """One admitted request's share of a lease."""

    key_id: int
    lease_id: str
    bound: int


@dataclass(frozen=True, slots=True)
class Release:
    """Settlement instructions for the store: cost becomes spend, `released` leaves the lease."""

    key_id: int
    lease_id: str | None
    cost: int
    released: int


class BudgetLeases:
    def __init__(self, store: LeaseStore, instance_id: str, hold_seconds: float) -> None:
        self.store = store
        self.instance_id = instance_id
        self.hold_seconds = hold_seconds
        self._leases: dict[int, Lease] = {}
        self._ids = itertools.count(1)

    def _new_id(self, key_id: int) -> str:
        return f"{self.instance_id[:16]}:{key_id}:{next(self._ids)}"

    def _lease(self, key_id: int) -> Lease:
        lease = self._leases.get(key_id)
        if lease is None:
            lease = self._leases[key_id] = Lease(self._new_id(key_id))
        return lease

    async def admit(self, key_id: int, budget_micros: int, bound: budget.CostBound,
                    period_start_ms: int) -> tuple[Ticket, int] | None:
        """Admit a request whose worst case is `bound`; returns its ticket and the max_tokens to send."""
        lease = self._lease(key_id)
        if lease.in_flight + bound.total <= lease.held:  # the common case: no database at all
            return self._take(lease, key_id, bound.total), bound.max_tokens
        async with lease.lock:  # one growth per key at a time; others wait and then fit in memory
            if lease.in_flight + bound.total <= lease.held:
                return self._take(lease, key_id, bound.total), bound.max_tokens
            need = lease.in_flight + bound.total - lease.held
            for amount in dict.fromkeys((max(need, budget_micros // CHUNK_DIVISOR), need)):
                if await self.store.grow_lease(key_id, lease.id, amount, period_start_ms):
                    lease.held += amount
                    return self._take(lease, key_id, bound.total), bound.max_tokens
            return await self._fit(lease, key_id, bound, period_start_ms)

    async def _fit(self, lease: Lease, key_id: int, bound: budget.CostBound,
                   period_start_ms: int) -> tuple[Ticket, int] | None:
        """Near the limit: lower max_tokens until the worst case fits what is left, or give up."""
        for _ in range(3):
            limit, spent, reserved = await self.store.remaining(key_id, period_start_ms)
            free = (limit or 0) - spent - reserved + (lease.held - lease.in_flight)
            fit = bound.fit_max_tokens(free)
            if fit is None:
                return None
            smaller = budget.CostBound(bound.input_micros, bound.output_rate, fit)
            need = lease.in_flight + smaller.total - lease.held
            if need <= 0 or await self.store.grow_lease(key_id, lease.id, need, period_start_ms):
                lease.held += max(need, 0)
                return self._take(lease, key_id, smaller.total), fit
        return None

    @staticmethod
    def _take(lease: Lease, key_id: int, amount: int) -> Ticket:
        lease.in_flight += amount
        return Ticket(key_id, lease.id, amount)

    def settle(self, ticket: Ticket | None, key_id: int, cost: int) -> Release | None:
        """The request is over: its bound leaves in-flight, its cost leaves the lease as spend."""
        if ticket is None:
            return Release(key_id, None, cost, 0) if cost else None
        lease = self._leases.get(ticket.key_id)
        if lease is None or lease.id != ticket.lease_id:
            return Release(key_id, None, cost, 0)  # the lease was swept meanwhile: spend only
        lease.in_flight -= ticket.bound
        released = max(0, min(cost, lease.held - lease.in_flight))
        lease.held -= released
        if lease.in_flight == 0:
            lease.idle_since = time.monotonic()
        return Release(key_id, ticket.lease_id, cost, released)

    def idle(self, now: float | None = None) -> list[tuple[int, str]]:
        """Leases idle past the hold time: returned to the key (a fresh lease id is used next time)."""
        now = time.monotonic() if now is None else now
        out: list[tuple[int, str]] = []
        for key_id, lease in self._leases.items():
            if lease.in_flight == 0 and lease.held > 0 and now - lease.idle_since >= self.hold_seconds \
                    and not lease.lock.locked():
                out.append((key_id, lease.id))
                lease.held = 0
                lease.id = self._new_id(key_id)
        return out
