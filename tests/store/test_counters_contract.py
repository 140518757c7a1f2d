"""One contract suite for the rate-limit counters, run against the in-process and the Redis adapters alike;
then what only a shared store can get wrong: slots of a dead holder (issue 13) and a check that was cut
short (issue 11, finding 6)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis

from orgate.errors import RateLimited
from orgate.governance.keys import KeyRecord
from orgate.governance.limits import Limiter, MemoryCounters, counter_id
from orgate.store.redis_counters import RedisCounters

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _redis(clock: Clock | None = None, prefix: str | None = None) -> RedisCounters:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.fail("Redis is not reachable on 127.0.0.1:6379 (the test environment provides it)")
    return RedisCounters(REDIS_URL, prefix or f"test-{uuid.uuid4().hex[:8]}:", clock=clock or Clock())


@pytest.fixture(params=["memory", "redis"])
async def counters(request):
    c = MemoryCounters() if request.param == "memory" else _redis()
    yield c
    if request.param == "redis":
        await c.aclose()


async def test_requests_per_minute(counters):
    assert [await counters.admit("k", 1, 2, 0, 0) for _ in range(3)] == [0, 0, 1]
    assert await counters.admit("k", 2, 2, 0, 0) == 0  # the next minute starts again
    assert await counters.admit("other", 2, 2, 0, 0) == 0  # per key


async def test_tokens_per_minute(counters):
    assert await counters.admit("k", 1, 0, 100, 0) == 0
    await counters.add_tokens("k", 1, 100)
    assert await counters.admit("k", 1, 0, 100, 0) == 2


async def test_concurrency_slots_are_per_holder(counters):
    assert await counters.admit("k", 1, 0, 0, 2, "a") == 0
    assert await counters.admit("k", 1, 0, 0, 2, "b") == 0
    assert await counters.admit("k", 1, 0, 0, 2, "c") == 3
    await counters.release("k", "c")  # refused: holds nothing, releasing is a no-op
    assert await counters.admit("k", 1, 0, 0, 2, "c") == 3
    await counters.release("k", "a")
    await counters.release("k", "a")  # twice: still one slot freed, not two
    assert await counters.admit("k", 1, 0, 0, 2, "c") == 0
    assert await counters.admit("k", 1, 0, 0, 2, "d") == 3


async def test_a_dead_holders_slot_expires_while_the_key_stays_busy():
    clock = Clock()
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    crashed, alive = _redis(clock, prefix), _redis(clock, prefix)
    try:
        assert await crashed.admit("k", 1, 0, 0, 2, "dead") == 0  # its instance then dies: never released
        await crashed.aclose()
        assert await alive.admit("k", 1, 0, 0, 2, "live") == 0
        assert await alive.admit("k", 1, 0, 0, 2, "x") == 3  # both slots taken
        for _ in range(4):  # the key stays busy; the living holder renews, the dead one does not
            clock.now += alive.slot_ttl / 2
            await alive.renew()
        assert await alive.admit("k", 1, 0, 0, 2, "x") == 0  # the dead holder's slot expired
        assert await alive.admit("k", 1, 0, 0, 2, "y") == 3  # the living holder's did not
    finally:
        await alive.aclose()


class StallingRedis(RedisCounters):
    """Redis takes the slot, then the reply never comes back (a stall, or the client leaving mid-check)."""

    async def admit(self, *args, **kw) -> int:
        await super().admit(*args, **kw)
        await asyncio.Event().wait()
        return 0


async def _cut_short(stalling: RedisCounters, probe: RedisCounters, key: KeyRecord, holder: str) -> None:
    check = asyncio.create_task(Limiter(stalling).acquire(key, holder))
    slots = probe._k("conc", counter_id(key))
    while not await probe.client.zscore(slots, holder):
        await asyncio.sleep(0.01)  # the slot was taken in Redis ...
    check.cancel()  # ... and the request gave up waiting for the answer
    with pytest.raises(asyncio.CancelledError):
        await check


async def test_a_check_cut_short_still_frees_its_slot():
    clock = Clock()
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    key = KeyRecord(id=1, name="n", prefix="sk-x", hash="h" * 64, status="active", created_ms=0, expires_ms=None,
                    budget_micros=None, budget_period="monthly", allowed_models=None, rpm=None, tpm=None,
                    max_concurrency=1)
    stalling, fresh = StallingRedis(REDIS_URL, prefix, clock=clock), _redis(clock, prefix)
    try:
        await _cut_short(stalling, fresh, key, "req_1")
        # The pipeline releases whatever the check may have taken (Pipeline.limit marks it before asking).
        await Limiter(stalling).release(key, "req_1")
        await Limiter(fresh).acquire(key, "req_2")
        await Limiter(fresh).release(key, "req_2")
        # Had the release been lost as well (the instance died), nobody renews the slot: it expires.
        await _cut_short(stalling, fresh, key, "req_3")
        await stalling.aclose()
        with pytest.raises(RateLimited):
            await Limiter(fresh).acquire(key, "req_4")
        clock.now += stalling.slot_ttl + 1
        await Limiter(fresh).acquire(key, "req_4")
    finally:
        await fresh.aclose()
