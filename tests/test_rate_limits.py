"""Per-key limits: in-process on one instance, shared through Redis across instances."""

from __future__ import annotations

import concurrent.futures as cf
import time
import uuid

import anthropic
import httpx
import pytest
import redis

from tests.fakes.anthropic_fake import Reply
from tests.gateway import Gateway

MSG = [{"role": "user", "content": "hi"}]
REDIS_URL = "redis://127.0.0.1:6379/0"


def _clear_of_minute_edge(needed_s: float = 8.0) -> None:
    """Limits count in UTC minute buckets; start where the bucket cannot roll over mid-test."""
    left = 60 - time.time() % 60
    if left < needed_s:
        time.sleep(left + 0.1)


def _post(url: str, key: str) -> httpx.Response:
    return httpx.post(url + "/v1/messages", timeout=30, headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                      json={"model": "claude-haiku-4.5", "max_tokens": 5, "messages": MSG})


def test_rpm_limit_is_retryable_429(gateway, fake):
    k = gateway.create_key("rpm", rpm=3)
    _clear_of_minute_edge()
    codes = [_post(gateway.url, k).status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
    r = _post(gateway.url, k)
    assert r.headers["x-should-retry"] == "true" and 0 < int(r.headers["retry-after"]) <= 60
    assert "requests per minute" in r.json()["error"]["message"]


def test_concurrency_limit(gateway, fake):
    k = gateway.create_key("conc", max_concurrency=2)
    fake.default = Reply(first_byte_delay=3)  # long enough that all five overlap even on a busy machine
    with cf.ThreadPoolExecutor(5) as pool:
        codes = sorted(r.status_code for r in pool.map(lambda _: _post(gateway.url, k), range(5)))
    assert codes.count(200) == 2 and codes.count(429) == 3
    fake.default = Reply()
    assert _post(gateway.url, k).status_code == 200  # slots were released


@pytest.fixture
def redis_prefix_clean():
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    yield


def test_rpm_shared_across_instances_through_redis(fake, redis_prefix_clean, pg_url):
    env = {"ORGATE_REDIS_URL": REDIS_URL}
    gws = [Gateway(fake.url, database_url=pg_url, env=env).start() for _ in range(2)]
    try:
        k = gws[0].create_key("shared-rpm-" + uuid.uuid4().hex[:6], rpm=4)
        _clear_of_minute_edge()
        codes = [_post(gws[i % 2].url, k).status_code for i in range(8)]
        assert codes.count(200) == 4 and codes.count(429) == 4  # one limit for both instances
        c = anthropic.Anthropic(base_url=gws[1].url, api_key=k, max_retries=0)
        with pytest.raises(anthropic.RateLimitError):
            c.messages.create(model="claude-haiku-4.5", max_tokens=5, messages=MSG)
    finally:
        for gw in gws:
            gw.stop()
