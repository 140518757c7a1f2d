"""`orgate serve --workers 2`: two processes on one port, sharing budgets (database leases), key limits and
circuit state (the supervisor's host state service, no Redis), draining together on SIGTERM."""

from __future__ import annotations

import concurrent.futures as cf
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.fakes.anthropic_fake import FakeAnthropic, Reply
from tests.gateway import Gateway, free_port
from tests.test_rate_limits import _clear_of_minute_edge

MSG = [{"role": "user", "content": "hi"}]
PRICE = {"input": "3", "output": "15"}
HEADERS = {"anthropic-version": "2023-06-01"}


def two_workers(fake: FakeAnthropic, database_url: str | None = None) -> Gateway:
    gw = Gateway(fake.url, database_url=database_url,
                 command=[sys.executable, "-m", "orgate", "serve", "--workers", "2"])
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: every attempt is a refused connection
    cfg = {"routing": {"circuit_failures": 3, "circuit_cooldown_seconds": 300, "max_attempts": 2},
           "providers": {"dead": {"type": "anthropic", "base_url": dead, "api_key": "x"}},
           "models": {"claude-dual": {"price": PRICE, "deployments": [
               {"provider": "dead", "model": "claude-sonnet-4-5-20250929"},
               {"provider": "anthropic", "model": "claude-sonnet-4-5-20250929"}]}}}
    path = Path(gw.data_dir) / "orgate.yaml"
    path.write_text(yaml.safe_dump(cfg))
    gw.env["ORGATE_CONFIG"] = str(path)
    gw.start(timeout=120)
    deadline = time.time() + 120  # /health answered from one worker; wait until both take requests
    while time.time() < deadline:
        with cf.ThreadPoolExecutor(8) as pool:
            seen = workers_of(list(pool.map(lambda _: httpx.get(gw.url + "/v1/models", timeout=30), range(8))))
        if len(seen) == 2:
            return gw
        time.sleep(0.5)
    raise AssertionError("the second worker never answered")


@pytest.fixture(scope="module")
def gw(fake_session: FakeAnthropic) -> Iterator[Gateway]:
    g = two_workers(fake_session)
    yield g
    g.stop()


@pytest.fixture
def fake_w(fake: FakeAnthropic) -> FakeAnthropic:
    return fake  # the session's fake, reset for each test


def post(gw: Gateway, key: str, model: str = "claude-sonnet-4.5", stream: bool = False) -> httpx.Response:
    return httpx.post(gw.url + "/v1/messages", timeout=60, headers={**HEADERS, "x-api-key": key},
                      json={"model": model, "max_tokens": 100, "messages": MSG, "stream": stream})


def burst(gw: Gateway, key: str, n: int, **kw: object) -> list[httpx.Response]:
    with cf.ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: post(gw, key, **kw), range(n)))  # type: ignore[arg-type]


def workers_of(responses: list[httpx.Response]) -> set[str]:
    """Request ids start with a per-process random prefix: one per worker that answered."""
    return {r.headers["x-request-id"][:16] for r in responses}


def key_id(gw: Gateway, name: str) -> int:
    return gw.query("SELECT id FROM keys WHERE name = :n", n=name)[0]["id"]


def test_both_workers_serve_and_every_row_lands_once(gw: Gateway, fake_w: FakeAnthropic) -> None:
    fake_w.default = Reply(usage={"input_tokens": 10, "output_tokens": 20}, first_byte_delay=0.1)
    k = gw.create_key("w-rows")
    responses = burst(gw, k, 60)
    assert [r.status_code for r in responses] == [200] * 60
    assert len(workers_of(responses)) == 2
    kid = key_id(gw, "w-rows")
    rows = gw.ledger(60, key_id=kid)
    assert len(rows) == 60 and len({r["request_id"] for r in rows}) == 60
    assert {r["request_id"] for r in rows} == {r.headers["x-request-id"] for r in responses}
    rollup = gw.query("SELECT SUM(requests) AS n, SUM(cost_micros) AS c FROM usage_daily WHERE key_id = :k", k=kid)[0]
    assert rollup["n"] == 60 and rollup["c"] == sum(r["cost_micros"] for r in rows) == 60 * (10 * 3 + 20 * 15)


def test_a_burst_across_workers_never_overspends(gw: Gateway, fake_w: FakeAnthropic) -> None:
    fake_w.default = Reply(usage={"input_tokens": 50, "output_tokens": 100}, first_byte_delay=0.2)
    actual = 50 * 3 + 100 * 15
    budget = 10 * actual
    k = gw.create_key("w-burst", budget_micros=budget)
    responses = burst(gw, k, 50)
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(ok) + len(refused) == 50 and ok and refused
    assert len(workers_of(responses)) == 2
    kid = key_id(gw, "w-burst")
    rows = gw.ledger(len(ok), status=200, key_id=kid)
    spent = sum(r["cost_micros"] for r in rows)
    print(f"workers burst: {len(ok)} served, {len(refused)} refused, spent {spent} of {budget} micro-USD")
    assert spent <= budget
    deadline = time.time() + 15  # idle leases go back after lease_hold_seconds
    while time.time() < deadline:
        row = gw.query("SELECT spent_micros, reserved_micros FROM keys WHERE id = :k", k=kid)[0]
        if row["reserved_micros"] == 0:
            break
        time.sleep(0.1)
    assert row["spent_micros"] == spent and row["reserved_micros"] == 0


def test_one_keys_rpm_limit_holds_across_workers(gw: Gateway, fake_w: FakeAnthropic) -> None:
    k = gw.create_key("w-rpm", rpm=40)
    _clear_of_minute_edge(20)
    responses = burst(gw, k, 100)
    ok = sum(r.status_code == 200 for r in responses)
    refused = sum(r.status_code == 429 for r in responses)
    print(f"workers rpm 40: {ok} admitted, {refused} refused of 100")
    assert ok + refused == 100 and abs(ok - 40) <= 2  # within 5 %
    assert ok == 40  # exact: one counter for the host
    assert len(workers_of(responses)) == 2


def test_concurrency_limit_holds_across_workers(gw: Gateway, fake_w: FakeAnthropic) -> None:
    k = gw.create_key("w-conc", max_concurrency=2)
    fake_w.default = Reply(first_byte_delay=3.0)  # long enough for all 8 to be in flight on a busy machine
    responses = burst(gw, k, 8)
    print("workers concurrency 2:", sorted(r.status_code for r in responses))
    assert sorted(r.status_code for r in responses) == [200] * 2 + [429] * 6
    assert len(workers_of(responses)) == 2
    fake_w.default = Reply()
    assert [r.status_code for r in burst(gw, k, 2)] == [200, 200]  # the slots came back


def test_an_open_circuit_is_open_in_every_worker(gw: Gateway, fake_w: FakeAnthropic) -> None:
    k = gw.create_key("w-circuit")
    for _ in range(3):  # three refused connections to `dead` open its circuit (circuit_failures: 3)
        assert post(gw, k, model="claude-dual").status_code == 200
    time.sleep(0.5)  # the change reaches the other worker a round trip later
    responses = burst(gw, k, 30, model="claude-dual")
    assert [r.status_code for r in responses] == [200] * 30 and len(workers_of(responses)) == 2
    rows = gw.ledger(33, key_id=key_id(gw, "w-circuit"))
    later = [r for r in rows if r["request_id"] in {x.headers["x-request-id"] for x in responses}]
    assert len(later) == 30 and all(r["attempts"] == 1 and r["provider"] == "anthropic" for r in later)


def test_sigterm_drains_every_worker(fake_w: FakeAnthropic) -> None:
    # ~5 s per stream, so all eight are in flight together even on a busy machine
    fake_w.default = Reply(blocks=[{"type": "text", "text": "slow " * 10}], event_delay=0.4)
    g = two_workers(fake_w)
    k = g.create_key("w-drain")
    opened_before = fake_w.open_streams  # the session's fake counts every stream it ever opened
    with cf.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(post, g, k, "claude-sonnet-4.5", True) for _ in range(8)]
        deadline = time.time() + 60
        while fake_w.open_streams - opened_before < 8 and time.time() < deadline:
            time.sleep(0.05)
        assert fake_w.open_streams - opened_before == 8, "the eight streams never all started"
        assert g.proc is not None
        g.proc.send_signal(signal.SIGTERM)
        responses = [f.result() for f in futures]
    assert g.proc.wait(60) == 0
    assert [r.status_code for r in responses] == [200] * 8 and len(workers_of(responses)) == 2
    assert all(r.text.count("event: message_stop") == 1 for r in responses)  # every stream ran to its end
    rows = g.ledger(8, key_id=key_id(g, "w-drain"))
    assert sorted(r["status"] for r in rows) == [200] * 8
    g.stop()


def messages_served(gw: Gateway) -> float:
    """orgate_requests_total of Sonnet requests answered 2xx, as one scrape of /metrics shows it."""
    from prometheus_client.parser import text_string_to_metric_families

    r = httpx.get(gw.url + "/metrics", timeout=30)
    assert r.status_code == 200, r.text
    total = 0.0
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            if s.name == "orgate_requests_total" and s.labels.get("status_class") == "2xx" \
                    and s.labels.get("model") == "claude-sonnet-4.5":
                total += s.value
    return total


def test_metrics_sum_every_workers_requests(gw: Gateway, fake_w: FakeAnthropic) -> None:
    """A scrape reaches one worker; it must still count the requests every worker answered."""
    fake_w.default = Reply(usage={"input_tokens": 10, "output_tokens": 20}, first_byte_delay=0.05)
    k = gw.create_key("w-metrics")
    before = messages_served(gw)
    responses = burst(gw, k, 40)
    assert [r.status_code for r in responses] == [200] * 40
    assert len(workers_of(responses)) == 2
    for _ in range(8):  # whichever worker answers the scrape
        after = messages_served(gw)
        assert after - before == 40
