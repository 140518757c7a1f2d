"""Rate-limit counters in Redis, shared by every orgate instance that points at the same Redis.

Each check is one Lua script, so "read, compare, increment" is atomic across instances: two instances can
never both admit the last request of a minute. Minute buckets expire on their own; a concurrency slot held
by a crashed instance expires after CONCURRENCY_TTL_S.
"""

from __future__ import annotations

import redis.asyncio as redis

CONCURRENCY_TTL_S = 900

_ADMIT = """
local rpm, tpm, conc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if rpm > 0 and tonumber(redis.call('GET', KEYS[1]) or '0') >= rpm then return 1 end
if tpm > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') >= tpm then return 2 end
if conc > 0 then
  if tonumber(redis.call('GET', KEYS[3]) or '0') >= conc then return 3 end
  redis.call('INCR', KEYS[3])
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4]))
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], 120)
return 0
"""

_RELEASE = """
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v > 0 then redis.call('DECR', KEYS[1]) end
return 0
"""


class RedisCounters:
    def __init__(self, url: str, prefix: str = "orgate:") -> None:
        # Bounded waits: a stalled Redis is an outage answered 503 in seconds, not a hung request.
        self.client = redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.prefix = prefix
        self._admit = self.client.register_script(_ADMIT)
        self._release = self.client.register_script(_RELEASE)

    def _k(self, *parts: object) -> str:
        return self.prefix + ":".join(str(p) for p in parts)

    async def admit(self, ident: str, window: int, rpm: int, tpm: int, concurrency: int) -> int:
        keys = [self._k("rpm", ident, window), self._k("tpm", ident, window), self._k("conc", ident)]
        return int(await self._admit(keys=keys, args=[rpm, tpm, concurrency, CONCURRENCY_TTL_S]))

    async def release(self, ident: str) -> None:
        await self._release(keys=[self._k("conc", ident)])

    async def add_tokens(self, ident: str, window: int, n: int) -> None:
        k = self._k("tpm", ident, window)
        async with self.client.pipeline(transaction=True) as p:
            await p.incrby(k, n).expire(k, 120).execute()

    async def aclose(self) -> None:
        await self.client.aclose()
