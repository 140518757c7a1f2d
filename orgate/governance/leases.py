"""Budget leases: the hard cap of every key, user and team, held without a database write per request.

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

Users and teams are capped the same way: each level (key, user, team) with a budget has its own lease on
its own row, and a request is admitted only when its worst case fits every level's lease. A lease of a
user or team is shared by all of its keys' requests on this instance. Near a limit, the level that runs
short lowers max_tokens for all; if nothing useful fits it, the refusal names that level. Leases are locked
in the order key, user, team, so two requests never wait for each other's locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from orgate.governance import budget

CHUNK_DIVISOR = 20

Ref = tuple[str, int]  # ("key" | "user" | "team", id)


class LeaseStore(Protocol):
    async def grow_lease(self, ref: Ref, lease_id: str, amount: int, period_start_ms: int) -> bool: ...

    async def remaining(self, ref: Ref, period_start_ms: int) -> tuple[int | None, int, int]: ...


# Cap, Ticket and Release are made on every request (admission and settlement): NamedTuples, immutable like
# frozen dataclasses at half their cost to make (a frozen dataclass sets each field through object.__setattr__:
# ~7,700 instructions a Release against ~3,700; callgrind, docs/notes/session-14/front.md).
class Cap(NamedTuple):
    """One level's budget as admission needs it."""

    ref: Ref
    budget_micros: int
    period_start_ms: int


@dataclass(slots=True)
class Lease:
    id: str
    held: int = 0
    in_flight: int = 0
    idle_since: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Ticket(NamedTuple):
    """One admitted request's share of the lease of each capped level: ((ref, lease id), ...)."""

    parts: tuple[tuple[Ref, str], ...]
    bound: int


class Release(NamedTuple):
    """Settlement instructions for the store: cost becomes the level's spend, `released` leaves its lease."""

    ref: Ref
    lease_id: str | None
    cost: int
    released: int


@dataclass(frozen=True, slots=True)
class Refused:
    """Nothing useful fits this level's remaining budget."""

    level: str


class BudgetLeases:
    def __init__(self, store: LeaseStore, instance_id: str, hold_seconds: float) -> None:
        self.store = store
        self.instance_id = instance_id
        self.hold_seconds = hold_seconds
        self._leases: dict[Ref, Lease] = {}
        self._ids = itertools.count(1)

    def _new_id(self, ref: Ref) -> str:
        return f"{self.instance_id[:16]}:{ref[0][0]}{ref[1]}:{next(self._ids)}"

    def _lease(self, ref: Ref) -> Lease:
        lease = self._leases.get(ref)
        if lease is None:
            lease = self._leases[ref] = Lease(self._new_id(ref))
        return lease

    def lease_of(self, ref: Ref) -> Lease | None:
        """This instance's lease of a level, if any (read by admission's waiting; see governance/admission.py)."""
        return self._leases.get(ref)

    async def admit(self, caps: Sequence[Cap], bound: budget.CostBound) -> tuple[Ticket, int] | Refused:
        """Admit a request whose worst case is `bound` on every capped level (key, user, team order);
        returns its ticket and the max_tokens to send, or which level refused."""
        total = bound.total
        if len(caps) == 1:  # a key with a budget, no capped user or team: most keys, so without the lists
            ref = caps[0].ref
            lease = self._leases.get(ref) or self._lease(ref)
            if lease.in_flight + total <= lease.held:
                lease.in_flight += total
                return Ticket(((ref, lease.id),), total), bound.max_tokens
        leases = [self._lease(c.ref) for c in caps]
        if all(lease.in_flight + total <= lease.held for lease in leases):  # the common case: no database
            for lease in leases:
                lease.in_flight += total
            return self._ticket(caps, leases, total), bound.max_tokens
        async with contextlib.AsyncExitStack() as stack:
            for lease in leases:  # one growth per level at a time; others wait and then fit in memory
                await stack.enter_async_context(lease.lock)
            b = bound
            for i, (cap, lease) in enumerate(zip(caps, leases, strict=True)):
                # Each level takes its share as soon as it holds it (no await between the check and the
                # take), so requests admitted in memory meanwhile can never push in-flight past the lease.
                smaller = await self._cover(cap, lease, b)
                for earlier in leases[:i]:  # give back what the levels before took beyond the new bound
                    earlier.in_flight -= b.total - (smaller.total if smaller is not None else 0)
                if smaller is None:
                    return Refused(cap.ref[0])
                b = smaller
            return self._ticket(caps, leases, b.total), b.max_tokens

    async def _cover(self, cap: Cap, lease: Lease, b: budget.CostBound) -> budget.CostBound | None:
        """Take `b` from this level's lease, growing it a chunk at a time; near the limit a smaller `b`."""
        while lease.in_flight + b.total > lease.held:
            need = lease.in_flight + b.total - lease.held
            for amount in dict.fromkeys((max(need, cap.budget_micros // CHUNK_DIVISOR), need)):
                if await self.store.grow_lease(cap.ref, lease.id, amount, cap.period_start_ms):
                    lease.held += amount
                    break
            else:
                return await self._fit(cap, lease, b)
        lease.in_flight += b.total
        return b

    async def _fit(self, cap: Cap, lease: Lease, b: budget.CostBound) -> budget.CostBound | None:
        """Near the limit: lower max_tokens until the worst case fits what is left, or give up."""
        for _ in range(3):
            limit, spent, reserved = await self.store.remaining(cap.ref, cap.period_start_ms)
            free = (limit or 0) - spent - reserved + (lease.held - lease.in_flight)
            fit = b.fit_max_tokens(free)
            if fit is None:
                return None
            smaller = budget.CostBound(b.input_micros, b.output_rate, fit)
            need = lease.in_flight + smaller.total - lease.held
            if need > 0 and await self.store.grow_lease(cap.ref, lease.id, need, cap.period_start_ms):
                lease.held += need
            if lease.in_flight + smaller.total <= lease.held:
                lease.in_flight += smaller.total
                return smaller
        return None

    @staticmethod
    def _ticket(caps: Sequence[Cap], leases: list[Lease], amount: int) -> Ticket:
        return Ticket(tuple((c.ref, lease.id) for c, lease in zip(caps, leases, strict=True)), amount)

    def settle(self, ticket: Ticket | None, refs: Sequence[Ref], cost: int) -> list[Release]:
        """The request is over: its bound leaves in-flight on each capped level, and its cost becomes the
        spend of every level it belongs to (`refs`: key, user, team), capped or not."""
        held = dict(ticket.parts) if ticket is not None else {}
        out: list[Release] = []
        for ref in refs:
            lease_id = held.get(ref)
            if lease_id is None:
                if cost:
                    out.append(Release(ref, None, cost, 0))
                continue
            lease = self._leases.get(ref)
            if lease is None or lease.id != lease_id:
                out.append(Release(ref, None, cost, 0))  # the lease was swept meanwhile: spend only
                continue
            assert ticket is not None
            lease.in_flight -= ticket.bound
            released = max(0, min(cost, lease.held - lease.in_flight))
            lease.held -= released
            if lease.in_flight == 0:
                lease.idle_since = time.monotonic()
            out.append(Release(ref, lease_id, cost, released))
        return out

    def idle(self, now: float | None = None) -> list[tuple[Ref, str]]:
        """Leases idle past the hold time: returned to their level (a fresh lease id is used next time)."""
        now = time.monotonic() if now is None else now
        out: list[tuple[Ref, str]] = []
        for ref, lease in self._leases.items():
            if lease.in_flight == 0 and lease.held > 0 and now - lease.idle_since >= self.hold_seconds \
                    and not lease.lock.locked():
                out.append((ref, lease.id))
                lease.held = 0
                lease.id = self._new_id(ref)
        return out
