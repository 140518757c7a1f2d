"""Request, token and concurrency limits of keys, and request and token limits of their users and teams.

The rule lives here; the counting lives behind the `Counters` port: `MemoryCounters` counts in this
process (one instance), `store/redis_counters.py` counts in Redis with one Lua script per check so several
instances share one limit. Windows are fixed one-minute buckets (UTC minute), the same on every instance.
Keys without limits never touch a counter. A user's or team's limit is shared by all of its keys; its
counters are named by level and id (`user:7`), so two databases sharing one Redis must not both have users
or teams with limits.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

from orgate.errors import RateLimited
from orgate.governance.keys import Account, KeyRecord

# What a check refused: (which limit, message) by the code a counter returns.
REFUSALS = {
    1: "Rate limit: this key allows {rpm} requests per minute.",
    2: "Rate limit: this key allows {tpm} tokens per minute.",
    3: "Rate limit: this key allows {max_concurrency} concurrent requests.",
}


def counter_id(key: KeyRecord) -> str:
    """Counters are named by a slice of the key's hash: unique across databases sharing one Redis."""
    return key.hash[:16]


def _ident(x: KeyRecord | Account) -> str:
    return counter_id(x) if isinstance(x, KeyRecord) else f"{x.level}:{x.id}"


class Counters(Protocol):
    async def admit(self, ident: str, window: int, rpm: int, tpm: int, concurrency: int, holder: str = "") -> int:
        """0 when admitted (request counted, a concurrency slot taken by `holder`); else the REFUSALS code."""

    async def release(self, ident: str, holder: str = "") -> None:
        """Give back `holder`'s slot; a no-op when it holds none (releasing twice, or after a refusal)."""

    async def add_tokens(self, ident: str, window: int, n: int) -> None: ...


class MemoryCounters:
    def __init__(self) -> None:
        self._window = 0
        self._requests: dict[str, int] = defaultdict(int)
        self._tokens: dict[str, int] = defaultdict(int)
        self._active: dict[str, set[str]] = defaultdict(set)  # holders of each key's slots

    def _roll(self, window: int) -> None:
        if window != self._window:
            self._window = window
            self._requests.clear()
            self._tokens.clear()

    async def admit(self, ident: str, window: int, rpm: int, tpm: int, concurrency: int, holder: str = "") -> int:
        self._roll(window)
        if rpm and self._requests[ident] >= rpm:
            return 1
        if tpm and self._tokens[ident] >= tpm:
            return 2
        if concurrency and len(self._active[ident]) >= concurrency:
            return 3
        self._requests[ident] += 1
        if concurrency:
            self._active[ident].add(holder)
        return 0

    async def release(self, ident: str, holder: str = "") -> None:
        held = self._active.get(ident)
        if held is not None:
            held.discard(holder)
            if not held:
                del self._active[ident]

    async def add_tokens(self, ident: str, window: int, n: int) -> None:
        self._roll(window)
        self._tokens[ident] += n


class Limiter:
    """`clock` (wall seconds: windows are UTC minutes shared with other instances) is injectable so rate
    windows are tested without waiting for a minute to roll over."""

    def __init__(self, counters: Counters | None = None, clock: Callable[[], float] = time.time) -> None:
        self.counters = counters or MemoryCounters()
        self.clock = clock

    @staticmethod
    def limited(key: KeyRecord) -> bool:
        return bool(key.rate_limited)

    async def acquire(self, key: KeyRecord, holder: str = "") -> None:
        """Count the request at every level with limits (key, user, team) and take the key's concurrency slot
        for `holder` (a request id); raises RateLimited (retryable, with retry-after) naming the level whose
        limit is reached. The caller releases `holder` whatever happens, even when this was cancelled:
        releasing a slot not taken is a no-op."""
        now = self.clock()
        for x in key.rate_limited:
            conc = (key.max_concurrency or 0) if x is key else 0
            code = await self.counters.admit(_ident(x), int(now // 60), x.rpm or 0, x.tpm or 0, conc, holder)
            if code:
                if x is not key:
                    await self.release(key, holder)  # the key's concurrency slot, taken a moment ago
                retry_after = 1.0 if code == 3 else round(60 - now % 60, 1)
                message = REFUSALS[code].format(rpm=x.rpm, tpm=x.tpm, max_concurrency=key.max_concurrency)
                if x is not key:
                    message = message.replace("this key", f"this key's {x.level} '{x.name}'")
                raise RateLimited(message, retry_after=retry_after)

    async def release(self, key: KeyRecord, holder: str = "") -> None:
        if key.max_concurrency:
            await self.counters.release(counter_id(key), holder)

    @staticmethod
    def counts_tokens(key: KeyRecord) -> bool:
        return any(x.tpm for x in key.rate_limited)

    async def add_tokens(self, key: KeyRecord, n: int) -> None:
        for x in key.rate_limited:
            if x.tpm and n:
                await self.counters.add_tokens(_ident(x), int(self.clock() // 60), n)
