"""Per-key request and token windows (UTC minutes) on an injected clock: no waiting for a minute to roll."""

from __future__ import annotations

import pytest

from orgate.errors import RateLimited
from orgate.governance.keys import KeyRecord
from orgate.governance.limits import Limiter, MemoryCounters


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def key(**limits: int | None) -> KeyRecord:
    base = {"rpm": None, "tpm": None, "max_concurrency": None}
    return KeyRecord(id=7, name="k", prefix="sk-x", hash="h" * 64, status="active", created_ms=0, expires_ms=None,
                     budget_micros=None, budget_period="monthly", allowed_models=None, **{**base, **limits})


@pytest.mark.asyncio
async def test_requests_per_minute_window_rolls_on_the_minute():
    clock = Clock(60 * 1000 + 50.0)  # 10 s before a minute edge
    limiter, k = Limiter(MemoryCounters(), clock), key(rpm=2)
    await limiter.acquire(k, "a")
    await limiter.acquire(k, "b")
    with pytest.raises(RateLimited) as info:
        await limiter.acquire(k, "c")
    assert info.value.retry_after == 10.0 and "requests per minute" in info.value.message
    clock.now += 9.9
    with pytest.raises(RateLimited):  # still the same minute
        await limiter.acquire(k, "c")
    clock.now += 0.2  # the next minute: a fresh window
    await limiter.acquire(k, "c")


@pytest.mark.asyncio
async def test_tokens_per_minute_window():
    clock = Clock(120 * 1000.0)
    limiter, k = Limiter(MemoryCounters(), clock), key(tpm=100)
    await limiter.acquire(k, "a")
    await limiter.add_tokens(k, 100)
    with pytest.raises(RateLimited) as info:
        await limiter.acquire(k, "b")
    assert info.value.retry_after == 60.0
    clock.now += 60
    await limiter.acquire(k, "b")
