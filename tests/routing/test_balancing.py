"""Circuit breaker, weighted load balancing and session affinity, end to end and as units."""

from __future__ import annotations

import collections
import json
import time

import pytest

from orgate.config import RoutingSettings
from orgate.core.target import Target
from orgate.errors import UpstreamError
from orgate.routing.router import Router, weighted_order
from tests.routing.conftest import SONNET_PRICE, Clouds, Spec, deployment, start_gateway
from tests.routing.test_conformance import MSG, ant, oai


@pytest.fixture(scope="module")
def cb_gw(clouds_session, fake_session):
    routing = {"max_attempts": 2, "backoff_base_seconds": 0.01, "circuit_failures": 2, "circuit_cooldown_seconds": 1.5}
    models = {"cb-model": {"deployments": [deployment("bedrock"), deployment("vertex")], "price": SONNET_PRICE}}
    g = start_gateway(clouds_session, fake_session.url, routing, models)
    yield g
    g.stop()


def test_circuit_opens_after_repeated_failures_then_one_probe(cb_gw, clouds: Clouds):
    key = cb_gw.create_key()
    c = ant(cb_gw, key)
    clouds.push("bedrock", Spec(kind="overloaded"), Spec(kind="overloaded"))
    for _ in range(2):  # two failures on bedrock, each request served by vertex
        assert c.messages.create(model="cb-model", max_tokens=8, messages=MSG).content[0].text
    assert clouds.count("bedrock") == 2
    for _ in range(3):  # open: bedrock is not asked at all
        raw = c.messages.with_raw_response.create(model="cb-model", max_tokens=8, messages=MSG)
        assert raw.headers["x-orgate-provider"] == "vertex"
    assert clouds.count("bedrock") == 2 and clouds.count("vertex") == 5
    time.sleep(1.6)  # cool-down over: the next request probes bedrock, which has recovered
    raw = c.messages.with_raw_response.create(model="cb-model", max_tokens=8, messages=MSG)
    assert raw.headers["x-orgate-provider"] == "bedrock" and clouds.count("bedrock") == 3
    raw = c.messages.with_raw_response.create(model="cb-model", max_tokens=8, messages=MSG)
    assert raw.headers["x-orgate-provider"] == "bedrock"  # closed again


def test_failed_probe_reopens_the_circuit(cb_gw, clouds: Clouds):
    key = cb_gw.create_key()
    c = ant(cb_gw, key)
    clouds.push("bedrock", *[Spec(kind="overloaded")] * 3)
    for _ in range(2):
        c.messages.create(model="cb-model", max_tokens=8, messages=MSG)
    time.sleep(1.6)
    c.messages.create(model="cb-model", max_tokens=8, messages=MSG)  # the probe fails; vertex serves
    assert clouds.count("bedrock") == 3
    c.messages.create(model="cb-model", max_tokens=8, messages=MSG)
    assert clouds.count("bedrock") == 3  # open again, without waiting for N more failures


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
