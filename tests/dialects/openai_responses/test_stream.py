from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orgate.core.sse import SSEFramer
from orgate.dialects.openai_responses import ResponsesStreamEncoder

from .conftest import FIXTURES, anthropic_events, parse_sse, validate_event, validate_response

TOOLS = [
    {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}},
    {"type": "function", "name": "exec_command", "parameters": {"type": "object", "properties": {}}},
]
REQ = {
    "model": "gpt-5",
    "input": "x",
    "tools": TOOLS,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "include": ["reasoning.encrypted_content"],
    "store": False,
}


def run(name: str, envelope, request=REQ) -> tuple[list[tuple[str, dict]], ResponsesStreamEncoder]:
    enc = ResponsesStreamEncoder(model="gpt-5", created=1767225600, envelope=envelope, key_id="k", request=request)
    raw = enc.start() + b"".join(enc.feed(e) for e in anthropic_events(name)) + enc.finish()
    return parse_sse(raw), enc


def check_stream(events: list[tuple[str, dict]]) -> dict:
    """SDK-validate every event; check sequence numbers, framing and id consistency; return final response."""
    for n, (name, data) in enumerate(events):
        assert name == data["type"]
        assert data["sequence_number"] == n
        validate_event(data)
    assert [e[0] for e in events[:2]] == ["response.created", "response.in_progress"]
    final = events[-1][1]["response"]
    validate_response(final)
    assert final["id"] == events[0][1]["response"]["id"]
    done_items = [d["item"] for n, d in events if n == "response.output_item.done"]
    added = [d["item"]["id"] for n, d in events if n == "response.output_item.added"]
    assert final["output"] == done_items
    assert [i["id"] for i in done_items] == added
    idx = {i["id"]: k for k, i in enumerate(done_items)}
    for name, data in events:
        if "item_id" in data:
            assert idx[data["item_id"]] == data["output_index"], name
    return final


def test_text_stream(envelope):
    events, enc = run("text.sse", envelope)
    final = check_stream(events)
    assert [n for n, _ in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[6][1]["text"] == "Hello, wörld! 👋"
    msg = final["output"][0]
    assert msg["type"] == "message" and msg["status"] == "completed"
    assert msg["content"] == [{"type": "output_text", "text": "Hello, wörld! 👋", "annotations": []}]
    assert final["status"] == "completed"
    assert final["usage"] == {
        "input_tokens": 21,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 12,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 33,
    }
    assert enc.usage.input_tokens == 21 and enc.usage.output_tokens == 12


def test_tool_use_stream(envelope):
    events, _ = run("tool_use.sse", envelope)
    final = check_stream(events)
    deltas = [d["delta"] for n, d in events if n == "response.function_call_arguments.delta"]
    assert "".join(deltas) == '{"location": "Paris"}' and "" not in deltas
    done = next(d for n, d in events if n == "response.function_call_arguments.done")
    assert done["name"] == "get_weather" and done["arguments"] == '{"location": "Paris"}'
    added = next(d["item"] for n, d in events if n == "response.output_item.added" and d["output_index"] == 1)
    assert added["status"] == "in_progress" and added["arguments"] == ""
    fc = final["output"][1]
    assert fc == {
        "id": fc["id"],
        "type": "function_call",
        "status": "completed",
        "call_id": "toolu_01NRLabsLyVHZPKxbKvkfSMn",
        "name": "get_weather",
        "arguments": '{"location": "Paris"}',
    }
    assert fc["id"].startswith("fc_") and final["output"][0]["id"].startswith("msg_")


def test_thinking_then_tool_stream(envelope):
    events, _ = run("thinking_tool.sse", envelope)
    final = check_stream(events)
    names = [n for n, _ in events]
    assert names[2:9] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    rs = final["output"][0]
    assert rs["type"] == "reasoning" and rs["id"].startswith("rs_")
    assert rs["summary"] == [{"type": "summary_text", "text": "The user wants hello.txt. I'll write it with printf."}]
    assert envelope.open(rs["encrypted_content"], key_id="k") == [
        {
            "type": "thinking",
            "thinking": "The user wants hello.txt. I'll write it with printf.",
            "signature": "EqQBCkYIBhgCIkBzaWduYXR1cmUtZml4dHVyZS1ub3QtcmVhbA==",
        },
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlx"},
    ]
    assert final["output"][1]["name"] == "exec_command"
    assert final["usage"]["output_tokens_details"] == {"reasoning_tokens": 67}
    assert all(d.get("summary_index", 0) == 0 for _, d in events)


def test_no_summary_events_unless_requested(envelope):
    events, _ = run("thinking_tool.sse", envelope, {**REQ, "reasoning": {"effort": "high"}})
    final = check_stream(events)
    assert not [n for n, _ in events if "reasoning_summary" in n]
    assert final["output"][0]["summary"] == [] and final["output"][0]["encrypted_content"]


def test_cache_usage_and_incomplete(envelope):
    events, enc = run("cache_usage.sse", envelope)
    final = check_stream(events)
    assert events[-1][0] == "response.incomplete"
    assert final["status"] == "incomplete" and final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["usage"] == {
        "input_tokens": 32060,
        "input_tokens_details": {"cached_tokens": 30000, "cache_write_tokens": 2048},
        "output_tokens": 9,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 32069,
    }
    msg = final["output"][0]
    assert [p["text"] for p in msg["content"]] == ["Done: hello.txt", " now contains hi."]
    assert [d["content_index"] for n, d in events if n == "response.content_part.added"] == [0, 1]
    assert enc.usage.cache_read_tokens == 30000 and enc.usage.cache_write_5m_tokens == 2048


def _failed(events):
    names = [n for n, _ in events]
    assert names[-2:] == ["error", "response.failed"]
    for n, (_, data) in enumerate(events):
        assert data["sequence_number"] == n
    return events[-1][1]["response"]


@pytest.mark.parametrize(
    ("kind", "message", "status", "code"),
    [
        ("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum", 400, "context_length_exceeded"),
        ("rate_limit_error", "Rate limited. Please try again in 20s", 429, "rate_limit_exceeded"),
        ("overloaded_error", "Overloaded", 529, "server_error"),
        ("api_error", "Internal server error", 500, "server_error"),
    ],
)
def test_error_codes_codex_understands(envelope, kind, message, status, code):
    enc = ResponsesStreamEncoder(model="gpt-5", created=1, envelope=envelope, key_id="k", request=REQ)
    raw = enc.start() + enc.error(kind, message, status)
    events = parse_sse(raw)
    resp = _failed(events)
    assert resp["status"] == "failed"
    assert resp["error"]["code"] == code and resp["error"]["message"] == message
    validate_event(events[-2][1])  # the `error` event: code is a free string in the SDK
    if code != "context_length_exceeded":  # not in the SDK's ResponseError.code literal; Codex needs it
        validate_event(events[-1][1])
    assert enc.finish() == b"" and enc.feed({"type": "message_stop"}) == b""


def test_midstream_upstream_error_event(envelope):
    enc = ResponsesStreamEncoder(model="gpt-5", created=1, envelope=envelope, key_id="k", request=REQ)
    evs = anthropic_events("text.sse")[:4]
    raw = enc.start() + b"".join(enc.feed(e) for e in evs)
    raw += enc.feed({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}) + enc.finish()
    resp = _failed(parse_sse(raw))
    assert resp["error"]["code"] == "server_error"
    validate_response(resp)


def test_truncated_upstream_fails(envelope):
    enc = ResponsesStreamEncoder(model="gpt-5", created=1, envelope=envelope, key_id="k", request=REQ)
    raw = enc.start() + b"".join(enc.feed(e) for e in anthropic_events("text.sse")[:4]) + enc.finish()
    assert parse_sse(raw)[-1][0] == "response.failed"


def test_created_is_emitted_before_upstream(envelope):
    enc = ResponsesStreamEncoder(model="gpt-5", created=1, envelope=envelope, key_id="k", request=REQ)
    events = parse_sse(enc.start())
    assert [n for n, _ in events] == ["response.created", "response.in_progress"]
    for _, d in events:
        validate_event(d)
        assert d["response"]["status"] == "in_progress" and d["response"]["output"] == []


def _normalize(raw: bytes) -> list[dict]:
    out = []
    for _, d in parse_sse(raw):
        s = orjson.dumps(d).decode()
        out.append(orjson.loads(s.replace(_rid(raw), "RID")))
    for d in out:  # sealed tokens are randomized (fresh nonce); compare them by content
        item = d.get("item") or {}
        if "encrypted_content" in item:
            item["encrypted_content"] = "SEALED"
        for it in (d.get("response") or {}).get("output", []):
            if "encrypted_content" in it:
                it["encrypted_content"] = "SEALED"
    return out


def _rid(raw: bytes) -> str:
    return parse_sse(raw)[0][1]["response"]["id"][5:]


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(["text.sse", "tool_use.sse", "thinking_tool.sse", "cache_usage.sse"]),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_split_anywhere_same_events(name, cuts):
    from orgate.dialects.openai_responses import ReasoningEnvelope

    from .conftest import SECRET

    envelope = ReasoningEnvelope(SECRET)
    data = (FIXTURES / name).read_bytes()
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]

    def encode(pieces: list[bytes]) -> bytes:
        enc = ResponsesStreamEncoder(model="gpt-5", created=1, envelope=envelope, key_id="k", request=REQ)
        dec = SSEFramer()
        out = enc.start()
        for piece in pieces:
            for _, payload in dec.feed(piece):
                out += enc.feed(orjson.loads(payload))
        for _, payload in dec.finish():
            out += enc.feed(orjson.loads(payload))
        return out + enc.finish()

    assert _normalize(encode(chunks)) == _normalize(encode([data]))
