"""GET /metrics scraped with prometheus_client's own text parser after a scripted mix of requests against a real
orgate process: every counter and histogram count is checked exactly, and spend is checked against the ledger."""

from __future__ import annotations

import time

import anthropic
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.anthropic_fake import FakeAnthropic, Reply, error
from tests.gateway import Gateway, free_port

MSG = [{"role": "user", "content": "hi"}]
METRICS_TOKEN = "metrics-token-for-tests"
SONNET = "claude-sonnet-4.5"
HAIKU = "claude-haiku-4.5"
USAGE = {"input_tokens": 100, "output_tokens": 40, "cache_read_input_tokens": 1000,
         "cache_creation_input_tokens": 300,
         "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200}}


def scrape(gw: Gateway, url: str | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(url or gw.url + "/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metrics_gateway(fake_session: FakeAnthropic):
    gw = Gateway(fake_session.url, env={"ORGATE_METRICS__TOKEN": METRICS_TOKEN}).start(timeout=120)
    yield gw
    gw.stop()


def test_metrics_match_a_scripted_mix_exactly(metrics_gateway: Gateway, fake: FakeAnthropic):
    gw = metrics_gateway
    key = gw.create_key("plain")
    c = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
    fake.push(Reply(usage=USAGE), Reply(usage=USAGE), error(529, "overloaded_error", "Overloaded"),
              Reply(usage=USAGE), Reply(usage=USAGE))
    c.messages.create(model=SONNET, max_tokens=100, messages=MSG)  # 1: success
    with c.messages.stream(model=SONNET, max_tokens=100, messages=MSG) as s:  # 2: stream
        s.get_final_message()
    # 3: the first deployment answers 529, the request's fallback (another model) serves it
    c.messages.create(model=SONNET, max_tokens=100, messages=MSG, extra_body={"fallbacks": [{"model": HAIKU}]})
    # 4: a key near its budget: max_tokens lowered, served
    near = anthropic.Anthropic(base_url=gw.url, api_key=gw.create_key("near", budget_micros=100_000),
                               max_retries=0)
    near.messages.create(model=SONNET, max_tokens=20_000, messages=MSG)
    # 5: a key whose budget cannot cover the request: refused, nothing sent upstream
    broke = anthropic.Anthropic(base_url=gw.url, api_key=gw.create_key("broke", budget_micros=1), max_retries=0)
    with pytest.raises(anthropic.RateLimitError):
        broke.messages.create(model=SONNET, max_tokens=100, messages=MSG)
    # 6: an unknown key: 401, counted without model or provider
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=gw.url, api_key="sk-ant-nope", max_retries=0).messages.create(
            model=SONNET, max_tokens=10, messages=MSG)
    assert len(fake.requests) == 5

    rows = gw.ledger(5)
    time.sleep(0.3)  # a flush has happened (ledger rows are in): its histogram has at least one observation
    m = scrape(gw)
    ok = {"surface": "anthropic", "model": SONNET, "provider": "anthropic"}
    assert value(m, "orgate_requests_total", **ok, status_class="2xx") == 4
    assert value(m, "orgate_requests_total", surface="anthropic", model=SONNET, provider="", status_class="4xx") == 1
    assert value(m, "orgate_requests_total", surface="anthropic", model="", provider="", status_class="4xx") == 1
    assert sum(v for (n, _), v in m.items() if n == "orgate_requests_total") == 6
    for hist in ("orgate_request_duration_seconds", "orgate_time_to_first_byte_seconds"):
        assert value(m, hist + "_count", **ok) == 4
        assert value(m, hist + "_bucket", **ok, le="+Inf") == 4
        assert 0 < value(m, hist + "_sum", **ok) < 30
    # A refusal never reached the upstream and sent no first byte before its error answer: no TTFB sample.
    assert value(m, "orgate_time_to_first_byte_seconds_count", surface="anthropic", model=SONNET,
                 provider="") == 0
    assert value(m, "orgate_request_duration_seconds_count", surface="anthropic", model=SONNET, provider="") == 1

    assert value(m, "orgate_upstream_attempts_total", provider="anthropic", outcome="ok") == 4
    assert value(m, "orgate_upstream_attempts_total", provider="anthropic", outcome="http_529") == 1
    assert value(m, "orgate_upstream_fallbacks_total", provider="anthropic", reason="http_529") == 1
    assert sum(v for (n, _), v in m.items() if n == "orgate_upstream_retries_total") == 0
    assert value(m, "orgate_budget_refusals_total", surface="anthropic") == 1
    assert value(m, "orgate_max_tokens_clamped_total", surface="anthropic") == 1
    assert value(m, "orgate_streams_in_flight", surface="anthropic") == 0
    assert sum(v for (n, _), v in m.items() if n == "orgate_rate_limit_refusals_total") == 0

    tokens = {"input": 100, "output": 40, "cache_read": 1000, "cache_write_5m": 100, "cache_write_1h": 200}
    for cls, n in tokens.items():
        assert value(m, "orgate_tokens_total", model=SONNET, provider="anthropic", **{"class": cls}) == 4 * n
    billed = sum(r["cost_micros"] for r in rows)
    assert billed > 0
    assert value(m, "orgate_cost_microusd_total", model=SONNET, provider="anthropic") == billed
    assert value(m, "orgate_ledger_flush_duration_seconds_count") >= 1
    assert value(m, "orgate_ledger_flush_failures_total") == 0
    assert value(m, "orgate_ledger_queue_rows") == 0


def test_metrics_token_required_and_no_key_label_by_default(metrics_gateway: Gateway, fake: FakeAnthropic):
    gw = metrics_gateway
    assert httpx.get(gw.url + "/metrics").status_code == 401
    assert httpx.get(gw.url + "/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
    c = anthropic.Anthropic(base_url=gw.url, api_key=gw.create_key("secret-name"), max_retries=0)
    c.messages.create(model=SONNET, max_tokens=10, messages=MSG)
    text = httpx.get(gw.url + "/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}).text
    assert "secret-name" not in text and 'key="' not in text


def test_metrics_on_a_separate_port_with_a_key_label(fake_session: FakeAnthropic, fake: FakeAnthropic):
    port = free_port()
    gw = Gateway(fake_session.url, env={"ORGATE_METRICS__PORT": str(port),
                                        "ORGATE_METRICS__PER_KEY_LABEL": "true"}).start(timeout=120)
    try:
        c = anthropic.Anthropic(base_url=gw.url, api_key=gw.create_key("alice"), max_retries=0)
        c.messages.create(model=SONNET, max_tokens=10, messages=MSG)
        assert httpx.get(gw.url + "/metrics").status_code == 404  # moved off the main port
        m = scrape(gw, f"http://127.0.0.1:{port}/metrics")
        assert value(m, "orgate_requests_total", surface="anthropic", model=SONNET, provider="anthropic",
                     status_class="2xx", key="alice") == 1
        assert value(m, "orgate_tokens_total", model=SONNET, provider="anthropic", key="alice",
                     **{"class": "input"}) == 12
    finally:
        gw.stop()


def test_metrics_can_be_turned_off(fake_session: FakeAnthropic):
    gw = Gateway(fake_session.url, env={"ORGATE_METRICS__ENABLED": "false"}).start(timeout=120)
    try:
        assert httpx.get(gw.url + "/metrics").status_code == 404
    finally:
        gw.stop()


def test_body_budget_waits_are_on_metrics(fake_session: FakeAnthropic, fake: FakeAnthropic):
    """A budget smaller than one body: concurrent requests wait for room, and /metrics counts them; once
    they are answered no body is held."""
    import concurrent.futures

    fake.default = Reply(usage={"input_tokens": 10, "output_tokens": 5}, first_byte_delay=0.3)
    gw = Gateway(fake_session.url, env={"ORGATE_METRICS__TOKEN": METRICS_TOKEN,
                                        "ORGATE_SERVER__MAX_BUFFERED_BODY_BYTES": "1000"}).start(timeout=120)
    try:
        key = gw.create_key("budget-waits")
        before = scrape(gw)
        assert value(before, "orgate_request_body_waits_total") == 0
        body = {"model": SONNET, "max_tokens": 10, "messages": [{"role": "user", "content": "x" * 5000}]}

        def one(_: int) -> int:
            return httpx.post(gw.url + "/v1/messages", json=body, timeout=30,
                              headers={"x-api-key": key, "anthropic-version": "2023-06-01"}).status_code

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            assert list(pool.map(one, range(4))) == [200] * 4
        after = scrape(gw)
        assert value(after, "orgate_request_body_waits_total") >= 1
        assert ("orgate_request_body_overdue_total", ()) in after  # shown (its value depends on timing)
        assert value(after, "orgate_request_body_bytes_held") == 0
    finally:
        gw.stop()
