"""Rate-limit counters in Redis, shared by every orgate instance that points at the same Redis.

Each check is one Lua script, so "read, compare, increment" is atomic across instances: two instances can
never both admit the last request of a minute. Minute buckets expire on their own.

Concurrency slots are per holder: a sorted set per key whose members are the holders (request ids) and whose
scores are deadlines. Admission first drops the members whose deadline passed, then counts. A living
instance pushes its holders' deadlines forward every HEARTBEAT_S (one task per process, not per request);
a holder whose instance crashed, or whose release was lost (Redis stalled, the client left during the
check), stops being renewed and frees its slot SLOT_TTL_S later at most. (A single counter with a TTL
refreshed on every admit never expired while the key stayed busy: issue 11, finding 6.)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import redis.asyncio as redis

SLOT_TTL_S = 30.0  # a slot nobody renews is free this long after its last renewal
HEARTBEAT_S = 10.0

_ADMIT = """
local rpm, tpm, conc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now, deadline = tonumber(ARGV[4]), tonumber(ARGV[5])
if rpm > 0 and tonumber(redis.call('GET', KEYS[1]) or '0') >= rpm then return 1 end
if tpm > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') >= tpm then return 2 end
if conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= conc then return 3 end
  redis.call('ZADD', KEYS[3], deadline, ARGV[6])
  redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[7]))
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], 120)
return 0
"""


class RedisCounters:
    def __init__(self, url: str, prefix: str = "orgate:", *, clock: Callable[[], float] = time.time,
                 slot_ttl: float = SLOT_TTL_S, heartbeat: float = HEARTBEAT_S) -> None:
        # Bounded waits: a stalled Redis is an outage answered 503 in seconds, not a hung request.
        self.client = redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.prefix = prefix
        self.clock = clock  # deadlines are on this clock (injected by tests); Redis's own TTL is a backstop
        self.slot_ttl = slot_ttl
        self.heartbeat_s = heartbeat
        self._admit = self.client.register_script(_ADMIT)
        self._held: dict[str, set[str]] = {}  # slot key -> holders of this instance, renewed by the heartbeat
        self._beat: asyncio.Task[None] | None = None

    def _k(self, *parts: object) -> str:
        return self.prefix + ":".join(str(p) for p in parts)

    async def admit(self, ident: str, window: int, rpm: int, tpm: int, concurrency: int, holder: str = "") -> int:
        keys = [self._k("rpm", ident, window), self._k("tpm", ident, window), self._k("conc", ident)]
        now = self.clock()
        if concurrency:
            # Known before the script runs: if the reply never comes (stall, cancellation), the heartbeat
            # stops with release() and the slot expires even when it was taken.
            self._held.setdefault(keys[2], set()).add(holder)
            self._ensure_heartbeat()
        code = int(await self._admit(keys=keys, args=[
            rpm, tpm, concurrency, _ms(now), _ms(now + self.slot_ttl), holder, int(self.slot_ttl * 2000)]))
        if code and concurrency:
            self._forget(keys[2], holder)
        return code

    async def release(self, ident: str, holder: str = "") -> None:
        key = self._k("conc", ident)
        self._forget(key, holder)
        await self.client.zrem(key, holder)

    async def add_tokens(self, ident: str, window: int, n: int) -> None:
        k = self._k("tpm", ident, window)
        async with self.client.pipeline(transaction=True) as p:
            await p.incrby(k, n).expire(k, 120).execute()

    async def renew(self) -> None:
        """Push this instance's holders' deadlines forward (XX: never resurrect a released slot)."""
        deadline = _ms(self.clock() + self.slot_ttl)
        for key, holders in list(self._held.items()):
            if holders:
                await self.client.zadd(key, dict.fromkeys(holders, deadline), xx=True)
                await self.client.pexpire(key, int(self.slot_ttl * 2000))

    def _forget(self, key: str, holder: str) -> None:
        held = self._held.get(key)
        if held is not None:
            held.discard(holder)
            if not held:
                del self._held[key]

    def _ensure_heartbeat(self) -> None:
        if self._beat is None or self._beat.done():
            self._beat = asyncio.get_running_loop().create_task(self._heartbeat())

    async def _heartbeat(self) -> None:
        while self._held:
            await asyncio.sleep(self.heartbeat_s)
            with contextlib.suppress(redis.RedisError):  # a missed beat only shortens a slot's life
                await self.renew()

    async def aclose(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
        await self.client.aclose()


def _ms(t: float) -> int:
    return int(t * 1000)
