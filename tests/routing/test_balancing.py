"""Circuit breaker, backoff, weighted load balancing and session affinity: the router on a fake clock (no\nsleeping), balancing and affinity end to end."""

from __future__ import annotations

import collections
import json
import random

import pytest

from orgate.config import RoutingSettings
from orgate.core.target import Target
from orgate.errors import UpstreamError
from orgate.routing.router import Router, weighted_order
from tests.routing.conftest import Clouds
from tests.routing.test_conformance import MSG, ant, oai


class FakeClock:
    """The router's clock and sleep: time moves only when the test (or a backoff) moves it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Resp:
    def __init__(self, status: int = 200) -> None:
        self.status, self.headers = status, {}

    async def read(self) -> bytes:
        return b"{}"

    async def aclose(self) -> None:
        return None


class Deployments:
    """Bedrock and Vertex deployments of one model; scripted failures per provider, successes otherwise."""

    def __init__(self) -> None:
        self.bedrock, self.vertex = Target("bedrock", "bedrock", "m"), Target("vertex", "vertex", "m")
        self.failures: dict[str, list[UpstreamError]] = collections.defaultdict(list)
        self.calls: collections.Counter[str] = collections.Counter()

    def push(self, provider: str, *errors: UpstreamError) -> None:
        self.failures[provider].extend(errors)

    async def attempt(self, t: Target) -> Resp:
        self.calls[t.provider] += 1
        if self.failures[t.provider]:
            raise self.failures[t.provider].pop(0)
        return Resp()

    async def serve(self, router: Router) -> str:
        return (await router.open([self.bedrock, self.vertex], self.attempt, stream=False)).target.provider


def overloaded(retry_after: float | None = None) -> UpstreamError:
    return UpstreamError("Overloaded", status=529, kind="overloaded_error", retry_after=retry_after, answered=True)


def circuit_router(clock: FakeClock) -> Router:
    # What the end-to-end version configured: max_attempts 2, circuit after 2 failures, 1.5 s cool-down.
    s = RoutingSettings(max_attempts=2, backoff_base_seconds=0.01, circuit_failures=2, circuit_cooldown_seconds=1.5)
    return Router(s, clock=clock, sleep=clock.sleep)


@pytest.mark.asyncio
async def test_circuit_opens_after_repeated_failures_then_one_probe():
    clock, d = FakeClock(), Deployments()
    router = circuit_router(clock)
    d.push("bedrock", overloaded(), overloaded())
    for _ in range(2):  # two failures on bedrock, each request served by vertex
        assert await d.serve(router) == "vertex"
    assert d.calls["bedrock"] == 2 and router.state(d.bedrock.label) == "open"
    for _ in range(3):  # open: bedrock is not asked at all
        assert await d.serve(router) == "vertex"
    assert d.calls["bedrock"] == 2 and d.calls["vertex"] == 5
    clock.now += 1.4
    assert await d.serve(router) == "vertex" and d.calls["bedrock"] == 2  # still cooling down
    clock.now += 0.2  # cool-down over: the next request probes bedrock, which has recovered
    assert router.state(d.bedrock.label) == "half-open"
    assert await d.serve(router) == "bedrock" and d.calls["bedrock"] == 3
    assert await d.serve(router) == "bedrock"  # closed again
    assert router.state(d.bedrock.label) == "closed" and clock.slept == []


@pytest.mark.asyncio
async def test_failed_probe_reopens_the_circuit():
    clock, d = FakeClock(), Deployments()
    router = circuit_router(clock)
    d.push("bedrock", *[overloaded() for _ in range(3)])
    for _ in range(2):
        await d.serve(router)
    clock.now += 1.6
    assert await d.serve(router) == "vertex"  # the probe fails; vertex serves
    assert d.calls["bedrock"] == 3
    assert await d.serve(router) == "vertex"
    assert d.calls["bedrock"] == 3  # open again, without waiting for N more failures
    clock.now += 1.6
    assert await d.serve(router) == "bedrock" and d.calls["bedrock"] == 4  # one full cool-down later: probed


@pytest.mark.asyncio
async def test_one_probe_at_a_time_while_half_open():
    clock, d = FakeClock(), Deployments()
    router = circuit_router(clock)
    d.push("bedrock", overloaded(), overloaded())
    for _ in range(2):
        await d.serve(router)
    clock.now += 1.6
    assert router._claim(d.bedrock.label)  # the probe is claimed (its request still in flight) ...
    assert await d.serve(router) == "vertex" and d.calls["bedrock"] == 2  # ... so no second probe
    clock.now += 1.6  # the probe never reported back: after one more cool-down another may probe
    assert await d.serve(router) == "bedrock"


@pytest.mark.asyncio
async def test_backoff_and_retry_after_on_the_routers_clock():
    clock, d = FakeClock(), Deployments()
    s = RoutingSettings(max_attempts=3, backoff_base_seconds=1.0, backoff_max_seconds=10.0, circuit_failures=99)
    router = Router(s, clock=clock, sleep=clock.sleep, rng=random.Random(7))
    only = [d.bedrock]
    d.push("bedrock", overloaded(), overloaded())
    opened = await router.open(only, d.attempt, stream=False)
    assert opened.attempts == 3 and d.calls["bedrock"] == 3
    # Full jitter: the n-th retry waits uniformly within base * 2**(n-1).
    assert len(clock.slept) == 2 and 0 <= clock.slept[0] <= 1.0 and 0 <= clock.slept[1] <= 2.0
    assert [e["ms"] for e in opened.log.entries] == [0, 0]  # attempt times are on the router's clock too
    clock.slept.clear()
    d.push("bedrock", overloaded(retry_after=3.0))
    await router.open(only, d.attempt, stream=False)
    assert clock.slept == [3.0]  # the upstream's retry-after, not the jitter
    clock.slept.clear()
    d.push("bedrock", overloaded(retry_after=30.0))
    with pytest.raises(UpstreamError) as info:  # longer than backoff_max: the deployment is out of this request
        await router.open(only, d.attempt, stream=False)
    assert clock.slept == [] and info.value.attempts == 1 and info.value.status == 529


@pytest.mark.asyncio
async def test_client_error_ends_the_request_at_once():
    clock, d = FakeClock(), Deployments()
    router = circuit_router(clock)
    d.push("bedrock", UpstreamError("prompt is too long", status=400, kind="invalid_request_error", answered=True))
    with pytest.raises(UpstreamError) as info:
        await d.serve(router)
    e = info.value
    assert (e.status, e.kind, e.message, e.attempts) == (400, "invalid_request_error", "prompt is too long", 1)
    assert e.attempt_log == [{"target": d.bedrock.label, "provider": "bedrock", "outcome": "HTTP 400", "ms": 0}]
    assert d.calls["vertex"] == 0 and router.state(d.bedrock.label) == "closed"


def test_weighted_balancing_respects_weights_end_to_end(gw, key, clouds: Clouds):
    c = oai(gw, key)
    served = collections.Counter()
    for _ in range(120):
        raw = c.chat.completions.with_raw_response.create(model="claude-weighted", messages=MSG, max_tokens=8)
        served[raw.headers["x-orgate-provider"]] += 1
    # weights 3:1 -> 90 expected on bedrock; a generous band keeps the test deterministic enough
    assert 70 <= served["bedrock"] <= 108 and served["vertex"] >= 12


def test_session_affinity_pins_a_session_to_one_deployment(gw, key, clouds: Clouds):
    c = ant(gw, key)
    seen: dict[str, set[str]] = collections.defaultdict(set)
    for session in [f"user-{i}" for i in range(12)]:
        for _ in range(4):
            raw = c.messages.with_raw_response.create(model="claude-weighted", max_tokens=8, messages=MSG,
                                                      metadata={"user_id": session})
            seen[session].add(raw.headers["x-orgate-provider"])
    assert all(len(v) == 1 for v in seen.values())
    assert {p for v in seen.values() for p in v} == {"bedrock", "vertex"}  # sessions still spread
    raw = c.messages.with_raw_response.create(model="claude-weighted", max_tokens=8, messages=MSG,
                                              extra_headers={"x-claude-code-session-id": "cc-1"})
    pinned = raw.headers["x-orgate-provider"]
    for _ in range(3):
        raw = c.messages.with_raw_response.create(model="claude-weighted", max_tokens=8, messages=MSG,
                                                  extra_headers={"x-claude-code-session-id": "cc-1"})
        assert raw.headers["x-orgate-provider"] == pinned


def test_weighted_order_distribution_unit():
    a, b, z = Target("a", "anthropic", "m", 3), Target("b", "bedrock", "m", 1), Target("z", "vertex", "m", 0)
    firsts = collections.Counter(weighted_order([a, b, z], None)[0].provider for _ in range(8000))
    assert abs(firsts["a"] / 8000 - 0.75) < 0.03 and firsts["z"] == 0
    assert weighted_order([a, b, z], "s1") == weighted_order([a, b, z], "s1")
    assert sorted(t.provider for t in weighted_order([a, b, z], "s1")) == ["a", "b", "z"]


@pytest.mark.asyncio
async def test_router_unit_breaker_and_attempt_budget():
    router = Router(RoutingSettings(max_attempts=1, circuit_failures=1, circuit_cooldown_seconds=60,
                                    backoff_base_seconds=0))
    a, b = Target("a", "anthropic", "m"), Target("b", "bedrock", "m")
    calls: list[str] = []

    class Resp:
        def __init__(self, status: int) -> None:
            self.status, self.headers = status, {}

        async def read(self) -> bytes:
            return json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "x"}}).encode()

        async def aclose(self) -> None:
            return None

    async def attempt(t: Target):
        calls.append(t.provider)
        return Resp(529 if t.provider == "a" else 200)

    opened = await router.open([a, b], attempt, stream=False)  # max_attempts 1 still tries every deployment
    assert opened.target == b and calls == ["a", "b"] and router.state(a.label) == "open"
    calls.clear()
    await router.open([a, b], attempt, stream=False)
    assert calls == ["b"]
    calls.clear()
    with pytest.raises(UpstreamError):  # the router raises the last failure's typed error (it used to return it)
        await router.open([a], attempt, stream=False)  # every circuit open: tried anyway
    assert calls == ["a"]
