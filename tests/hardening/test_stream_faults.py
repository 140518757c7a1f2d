"""A hostile upstream mid-stream on /v1/messages: the client gets an Anthropic `error` event, the row records it."""

from __future__ import annotations

import httpx
import pytest

from orgate.core.sse import SSEFramer
from tests.fakes.anthropic_fake import Reply

MSG = [{"role": "user", "content": "hi"}]

# Frames an upstream must never send: known event names with data of the wrong shape or no JSON at all.
GARBAGE = {
    "start-not-object": b'event: message_start\ndata: {"type": "message_start", "message": 5}\n\n',
    "delta-wrong-types": b'event: message_delta\ndata: {"type": "message_delta", "delta": "x", "usage": 5}\n\n',
    "delta-not-json": b"event: message_delta\ndata: \xff\xfe not json {\n\n",
    "content-not-json": b"event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"ind\x00\n\n",
    "error-not-object": b"event: error\ndata: [1, 2]\n\n",
}


def _events(body: bytes) -> list[tuple[str, bytes]]:
    f = SSEFramer()
    return f.feed(body) + f.finish()


@pytest.mark.parametrize("kind", list(GARBAGE))
def test_garbage_event_mid_stream_ends_with_error_event(db_gateway, fake, kind):
    key = db_gateway.create_key("garbage-" + kind)
    fake.push(Reply(blocks=[{"type": "text", "text": "an answer long enough to be several deltas"}],
                    inject={3: GARBAGE[kind]}))
    with httpx.Client(timeout=30) as c:
        r = c.post(db_gateway.url + "/v1/messages", headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                   json={"model": "claude-sonnet-4.5", "max_tokens": 64, "stream": True, "messages": MSG})
        body = r.read()  # a cut connection raises here (httpx.RemoteProtocolError: incomplete chunked read)
    assert r.status_code == 200
    events = _events(body)
    name, data = events[-1]
    assert name == "error", events[-3:]
    assert b'"type":"api_error"' in data.replace(b" ", b"")
    assert not any(n == "message_stop" for n, _ in events)
    row = db_gateway.ledger(1, request_id=r.headers["x-request-id"])[0]
    assert row["error_type"] == "api_error"
    assert row["input_tokens"] == 12  # usage read before the garbage is still billed


def test_usage_field_of_the_wrong_type_is_ignored_not_fatal(db_gateway, fake):
    """A token count that is not an integer is not counted (as when absent); the stream goes on."""
    key = db_gateway.create_key("garbage-usage")
    odd = (b'event: message_delta\ndata: {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 3, '
           b'"cache_creation": {"ephemeral_5m_input_tokens": "x", "ephemeral_1h_input_tokens": [1]}}}\n\n')
    fake.push(Reply(inject={3: odd}))
    r = httpx.post(db_gateway.url + "/v1/messages", headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                   json={"model": "claude-sonnet-4.5", "max_tokens": 64, "stream": True, "messages": MSG}, timeout=30)
    events = _events(r.content)
    assert events[-1][0] == "message_stop"
    row = db_gateway.ledger(1, request_id=r.headers["x-request-id"])[0]
    assert row["error_type"] is None and row["output_tokens"] == 9 and row["cache_write_5m_tokens"] == 0


def test_garbage_event_on_the_openai_surface_ends_with_its_error_chunk(db_gateway, fake):
    """The translated surfaces read the same frames: a malformed one ends the stream with the dialect's error."""
    key = db_gateway.create_key("garbage-openai")
    fake.push(Reply(blocks=[{"type": "text", "text": "an answer long enough to be several deltas"}],
                    inject={3: GARBAGE["delta-not-json"]}))
    r = httpx.post(db_gateway.url + "/v1/chat/completions", headers={"authorization": "Bearer " + key},
                   json={"model": "claude-sonnet-4.5", "stream": True, "messages": MSG}, timeout=30)
    datas = [d for _, d in _events(r.content)]
    assert datas[-1] == b"[DONE]" and b'"error"' in datas[-2], datas[-3:]
    row = db_gateway.ledger(1, request_id=r.headers["x-request-id"])[0]
    assert row["error_type"] == "api_error"
