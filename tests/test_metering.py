"""Metering and budgets through the official SDKs against real orgate processes."""

from __future__ import annotations

import concurrent.futures as cf
import signal
import threading
import time

import anthropic
import httpx
import pytest

from tests.fakes.anthropic_fake import FakeAnthropic, Reply
from tests.gateway import Gateway

MSG = [{"role": "user", "content": "hi"}]
ALL_CLASSES = {"input_tokens": 1000, "output_tokens": 500, "cache_read_input_tokens": 20000,
               "cache_creation_input_tokens": 3000,
               "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000}}
# claude-sonnet-4.5 at $3 / $15 / 5m $3.75 / 1h $6 / read $0.30 per MTok, by hand, in micro-USD:
HAND_COST = 1000 * 3 + 500 * 15 + 20000 * 3 // 10 + 1000 * 375 // 100 + 2000 * 6


def test_stream_and_non_stream_priced_identically(gateway, fake, key):
    c = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    fake.push(Reply(usage=ALL_CLASSES), Reply(usage=ALL_CLASSES))
    m = c.messages.create(model="claude-sonnet-4.5", max_tokens=600, messages=MSG)
    with c.messages.stream(model="claude-sonnet-4.5", max_tokens=600, messages=MSG) as s:
        s.get_final_message()
    rows = gateway.ledger(2, key_id=gateway.query("SELECT id FROM keys WHERE hash IS NOT NULL ORDER BY id DESC")[0]["id"])
    plain, streamed = rows[-2], rows[-1]
    assert (plain["stream"], streamed["stream"]) == (0, 1) or (plain["stream"], streamed["stream"]) == (False, True)
    for r in (plain, streamed):
        assert (r["input_tokens"], r["output_tokens"], r["cache_read_tokens"]) == (1000, 500, 20000)
        assert (r["cache_write_5m_tokens"], r["cache_write_1h_tokens"]) == (1000, 2000)
        assert r["cost_micros"] == HAND_COST == 32250
    assert m.usage.cache_read_input_tokens == 20000


def test_exhausted_budget_429_no_retry_and_no_upstream_call(gateway, fake):
    k = gateway.create_key("broke", budget_micros=1)
    c = anthropic.Anthropic(base_url=gateway.url, api_key=k, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as e:
        c.messages.create(model="claude-sonnet-4.5", max_tokens=100, messages=MSG)
    assert e.value.response.headers["x-should-retry"] == "false"
    assert "budget" in e.value.body["error"]["message"].lower()
    assert e.value.body["error"]["details"]["error_code"] == "enforced_spend_limit_reached"
    assert fake.requests == []
    usage = httpx.get(gateway.url + "/v1/usage", headers={"x-api-key": k}).json()
    assert usage["budget"]["limit_micros"] == 1 and usage["budget"]["spent_micros"] == 0


def test_near_the_limit_max_tokens_is_lowered_not_refused(gateway, fake):
    body_bytes = 120  # about what the SDK sends for this request; the bound uses the real size
    k = gateway.create_key("near", budget_micros=body_bytes * 3 + 2000 * 15 + 5000)
    c = anthropic.Anthropic(base_url=gateway.url, api_key=k, max_retries=0)
    m = c.messages.create(model="claude-sonnet-4.5", max_tokens=8000, messages=MSG)
    assert m.content[0].text
    sent = fake.last["body"]["max_tokens"]
    assert 256 <= sent < 8000


def test_usage_endpoint_reports_spend(gateway, fake):
    k = gateway.create_key("usage", budget_micros=5_000_000)
    c = anthropic.Anthropic(base_url=gateway.url, api_key=k, max_retries=0)
    c.messages.create(model="claude-haiku-4.5", max_tokens=10, messages=MSG)
    deadline = time.time() + 5
    while time.time() < deadline:
        u = httpx.get(gateway.url + "/v1/usage", headers={"authorization": f"Bearer {k}"}).json()
        if u["budget"]["spent_micros"]:
            break
        time.sleep(0.05)
    assert u["budget"]["spent_micros"] == 12 * 1 + 9 * 5  # haiku 4.5 at $1/$5
    assert u["budget"]["remaining_micros"] == 5_000_000 - 57 and u["key"]["state"] == "active"
    assert u["recent"][0]["public_model"] == "claude-haiku-4.5"


@pytest.mark.postgres
def test_burst_across_two_instances_never_overspends(pg_url):
    fake = FakeAnthropic()
    fake.start()
    usage = {"input_tokens": 50, "output_tokens": 100}
    fake.default = Reply(usage=usage, first_byte_delay=0.2)
    actual = 50 * 3 + 100 * 15  # 1650 micro-USD per request
    budget_micros = 10 * actual
    gws = [Gateway(fake.url, database_url=pg_url).start() for _ in range(2)]
    try:
        k = gws[0].create_key("burst", budget_micros=budget_micros)

        def call(i: int) -> tuple[int, dict[str, str]]:
            r = httpx.post(gws[i % 2].url + "/v1/messages", timeout=30,
                           headers={"x-api-key": k, "anthropic-version": "2023-06-01"},
                           json={"model": "claude-sonnet-4.5", "max_tokens": 100, "messages": MSG})
            return r.status_code, dict(r.headers)

        with cf.ThreadPoolExecutor(50) as pool:
            results = list(pool.map(call, range(50)))
        ok = [r for r in results if r[0] == 200]
        refused = [r for r in results if r[0] == 429]
        assert len(ok) + len(refused) == 50 and ok and refused, sorted(r[0] for r in results)
        assert all(h["x-should-retry"] == "false" for _, h in refused)
        key_id = gws[0].query("SELECT id FROM keys WHERE name = 'burst'")[0]["id"]
        rows = gws[0].ledger(len(ok), status=200, key_id=key_id)
        spent = sum(r["cost_micros"] for r in rows)
        assert spent <= budget_micros
        print(f"burst: {len(ok)} served, {len(refused)} refused, spent {spent} of {budget_micros} micro-USD")
        deadline = time.time() + 10  # idle budget leases go back after lease_hold_seconds
        while time.time() < deadline:
            keyrow = gws[0].query("SELECT spent_micros, reserved_micros FROM keys WHERE name = 'burst'")[0]
            if keyrow["reserved_micros"] == 0:
                break
            time.sleep(0.1)
        assert keyrow["spent_micros"] == spent and keyrow["reserved_micros"] == 0
    finally:
        for gw in gws:
            gw.stop()
        fake.stop()


def test_sigkill_mid_stream_reservation_expires():
    fake = FakeAnthropic()
    fake.start()
    fake.default = Reply(blocks=[{"type": "text", "text": "slow " * 40}], event_delay=0.2)
    env = {"ORGATE_BUDGETS__RESERVATION_TTL_SECONDS": "2", "ORGATE_BUDGETS__SWEEP_INTERVAL_SECONDS": "0.3"}
    gw1 = Gateway(fake.url, env=env).start()
    gw2 = None
    try:
        k = gw1.create_key("killed", budget_micros=10_000_000)

        def stream() -> None:
            try:
                with httpx.stream("POST", gw1.url + "/v1/messages", timeout=30,
                                  headers={"x-api-key": k, "anthropic-version": "2023-06-01"},
                                  json={"model": "claude-sonnet-4.5", "max_tokens": 1000, "stream": True,
                                        "messages": MSG}) as r:
                    for _ in r.iter_bytes():
                        pass
            except httpx.HTTPError:
                pass

        t = threading.Thread(target=stream)
        t.start()
        deadline = time.time() + 5
        while time.time() < deadline and not gw1.query("SELECT * FROM reservations"):
            time.sleep(0.05)
        held = gw1.query("SELECT reserved_micros FROM keys WHERE name = 'killed'")[0]["reserved_micros"]
        assert held > 0
        gw1.stop(signal.SIGKILL)
        t.join(10)
        assert gw1.query("SELECT reserved_micros FROM keys WHERE name = 'killed'")[0]["reserved_micros"] == held
        gw2 = Gateway(fake.url, env=env, data_dir=gw1.data_dir, database_url=gw1.database_url).start()
        deadline = time.time() + 10
        while time.time() < deadline:
            row = gw2.query("SELECT reserved_micros FROM keys WHERE name = 'killed'")[0]
            if row["reserved_micros"] == 0:
                break
            time.sleep(0.1)
        assert row["reserved_micros"] == 0
        assert gw2.query("SELECT COUNT(*) AS n FROM reservations")[0]["n"] == 0
        # the budget is whole again: a request that needs most of it is admitted
        c = anthropic.Anthropic(base_url=gw2.url, api_key=k, max_retries=0)
        fake.default = Reply()
        assert c.messages.create(model="claude-sonnet-4.5", max_tokens=100, messages=MSG).content
    finally:
        if gw2:
            gw2.stop()
        fake.stop()
