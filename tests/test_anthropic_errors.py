"""Errors in the Anthropic shape, with the statuses, SDK exception classes and retry headers clients rely on."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.fakes.anthropic_fake import FakeAnthropic, Reply, error
from tests.gateway import Gateway

MSG = [{"role": "user", "content": "hi"}]


def _post(gateway, headers, content):
    return httpx.post(gateway.url + "/v1/messages", content=content,
                      headers={"content-type": "application/json", "anthropic-version": "2023-06-01", **headers})


def _shape(r: httpx.Response, kind: str) -> dict:
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == kind, body
    assert body["request_id"] == r.headers["x-request-id"]
    return body


def test_missing_and_unknown_key_401_no_retry(gateway):
    r = _post(gateway, {}, b'{"model":"claude-sonnet-4.5","max_tokens":5,"messages":[]}')
    assert r.status_code == 401
    _shape(r, "authentication_error")
    assert r.headers["x-should-retry"] == "false"
    c = anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-not-a-real-key")
    with pytest.raises(anthropic.AuthenticationError):
        c.messages.create(model="claude-sonnet-4.5", max_tokens=5, messages=MSG)


def test_disabled_key_403(gateway):
    k = gateway.create_key("to-disable", status="disabled")
    c = anthropic.Anthropic(base_url=gateway.url, api_key=k, max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as e:
        c.messages.create(model="claude-sonnet-4.5", max_tokens=5, messages=MSG)
    assert e.value.response.headers["x-should-retry"] == "false"
    assert e.value.body["error"]["message"] == "API key disabled."


def test_bad_json_and_missing_fields_name_the_field(gateway, key):
    r = _post(gateway, {"x-api-key": key}, b'{"model": "claude-sonnet-4.5", "max_tokens": 5, ')
    assert r.status_code == 400
    assert "not valid JSON" in _shape(r, "invalid_request_error")["error"]["message"]
    assert r.headers["x-should-retry"] == "false"
    r = _post(gateway, {"x-api-key": key}, b'{"model": "claude-sonnet-4.5", "messages": []}')
    assert r.status_code == 400 and "max_tokens" in r.json()["error"]["message"]
    r = _post(gateway, {"x-api-key": key}, b'{"model": "claude-sonnet-4.5", "max_tokens": 5}')
    assert r.status_code == 400 and "messages" in r.json()["error"]["message"]
    r = _post(gateway, {"x-api-key": key}, b'{"max_tokens": 5, "messages": []}')
    assert r.status_code == 400 and "model" in r.json()["error"]["message"]
    r = _post(gateway, {"x-api-key": key}, b'[1,2]')
    assert r.status_code == 400


def test_unknown_model_404(gateway, key):
    c = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as e:
        c.messages.create(model="claude-nonexistent-9", max_tokens=5, messages=MSG)
    assert "claude-nonexistent-9" in e.value.body["error"]["message"]


@pytest.mark.parametrize("status,kind,exc", [
    (400, "invalid_request_error", anthropic.BadRequestError),
    (429, "rate_limit_error", anthropic.RateLimitError),
    (500, "api_error", anthropic.InternalServerError),
    (529, "overloaded_error", anthropic.OverloadedError),
])
def test_upstream_errors_relayed(gateway, key, fake, status, kind, exc):
    # The router retries retryable statuses itself (3 attempts by default): script all of them.
    fake.push(*[error(status, kind, f"upstream says {kind}", headers={"retry-after": "1"})] * 3)
    c = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    with pytest.raises(exc) as e:
        c.messages.create(model="claude-sonnet-4.5", max_tokens=5, messages=MSG)
    h = e.value.response.headers
    assert e.value.body["error"]["type"] == kind
    assert e.value.body["error"]["message"] == f"upstream says {kind}"
    if status == 400:
        assert h["x-should-retry"] == "false" and len(fake.requests) == 1
    else:
        assert h["x-should-retry"] == "true" and h["retry-after"] == "1"
        assert len(fake.requests) == 3


def test_upstream_529_then_success_is_invisible(gateway, key, fake):
    fake.push(error(529, "overloaded_error", "Overloaded"), Reply())
    c = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    raw = c.messages.with_raw_response.create(model="claude-sonnet-4.5", max_tokens=5, messages=MSG)
    assert raw.parse().content[0].text and len(fake.requests) == 2
    row = gateway.ledger(1, request_id=raw.headers["x-request-id"])[-1]
    assert row["attempts"] == 2 and "HTTP 529" in row["attempt_log"]


def test_mid_stream_error_event_raises_in_sdk(gateway, key, fake):
    fake.push(Reply(mid_stream_error="overloaded_error"))
    c = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as e:
        with c.messages.stream(model="claude-sonnet-4.5", max_tokens=64, messages=MSG) as s:
            s.get_final_message()
    assert "Overloaded" in str(e.value)


def test_dropped_stream_ends_with_error_event(gateway, key, fake):
    fake.push(Reply(blocks=[{"type": "text", "text": "a fairly long answer that will be cut"}], drop_after_events=4))
    r = httpx.post(gateway.url + "/v1/messages", headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                   json={"model": "claude-sonnet-4.5", "max_tokens": 64, "stream": True, "messages": MSG})
    assert r.status_code == 200
    assert "event: error" in r.text and "event: message_stop" not in r.text


def test_upstream_provider_401_is_not_the_clients_fault(gateway, key, fake):
    fake.push(error(401, "authentication_error", "invalid x-api-key sk-upstream-leak"))
    c = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as e:
        c.messages.create(model="claude-sonnet-4.5", max_tokens=5, messages=MSG)
    assert e.value.status_code == 502
    assert "sk-upstream" not in e.value.response.text


@pytest.fixture(scope="module")
def tight_gateway():
    fake = FakeAnthropic()
    fake.start()
    gw = Gateway(fake.url, env={"ORGATE_SERVER__MAX_BODY_BYTES": "4096",
                                "ORGATE_ROUTING__FIRST_BYTE_TIMEOUT": "0.5",
                                "ORGATE_ROUTING__MAX_ATTEMPTS": "1"}).start()
    yield gw, fake
    gw.stop()
    fake.stop()


def test_body_limit_413(tight_gateway):
    gw, _ = tight_gateway
    k = gw.create_key()
    c = anthropic.Anthropic(base_url=gw.url, api_key=k, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as e:
        c.messages.create(model="claude-sonnet-4.5", max_tokens=5, messages=[{"role": "user", "content": "x" * 10000}])
    assert e.value.status_code == 413 and e.value.body["error"]["type"] == "request_too_large"


def test_upstream_timeout_504(tight_gateway):
    gw, fake = tight_gateway
    fake.push(Reply(first_byte_delay=2.0))
    k = gw.create_key()
    c = anthropic.Anthropic(base_url=gw.url, api_key=k, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as e:
        c.messages.create(model="claude-sonnet-4.5", max_tokens=5, messages=MSG)
    assert e.value.status_code == 504 and e.value.body["error"]["type"] == "timeout_error"


def test_refused_connection_502():
    from tests.gateway import free_port

    gw = Gateway(f"http://127.0.0.1:{free_port()}", env={"ORGATE_ROUTING__MAX_ATTEMPTS": "2"}).start()
    try:
        c = anthropic.Anthropic(base_url=gw.url, api_key=gw.create_key(), max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as e:
            c.messages.create(model="claude-sonnet-4.5", max_tokens=5, messages=MSG)
        assert e.value.status_code == 502 and e.value.body["error"]["type"] == "api_error"
        assert e.value.response.headers["x-should-retry"] == "true"
        row = gw.ledger(1, request_id=e.value.response.headers["x-request-id"])[-1]
        assert row["status"] == 502 and row["attempts"] == 2  # what was tried is recorded even when all failed
        assert "connection failed" in row["attempt_log"]
    finally:
        gw.stop()
