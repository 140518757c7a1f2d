"""Recorded-shape Anthropic SSE bodies -> OpenAI chunk sequences, checked against the openai SDK types."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionChunk

from orgate.dialects.openai_chat.stream import ChatStreamEncoder

from .conftest import encode_pieces, load_fixture, parse_frames

HEAD = {"object": "chat.completion.chunk", "created": 1767225600, "model": "claude-x"}
ALL_FIXTURES = [
    "text_cache.sse",
    "tool_use.sse",
    "thinking.sse",
    "redacted_thinking.sse",
    "error.sse",
    "thinking_tool_use.sse",
]


def deltas(frames: list) -> list:
    """(delta, finish_reason) of each choice chunk; ("usage", usage) for the usage chunk; "[DONE]"."""
    out = []
    for f in frames:
        if f == "[DONE]":
            out.append(f)
        elif "error" in f:
            out.append(("error", f["error"]))
        elif f["choices"]:
            out.append((f["choices"][0]["delta"], f["choices"][0]["finish_reason"]))
        else:
            out.append(("usage", f["usage"]))
    return out


def validate(frames: list) -> None:
    ids = {f["id"] for f in frames if isinstance(f, dict) and "id" in f}
    assert len(ids) <= 1
    for f in frames:
        if isinstance(f, dict) and "error" not in f:
            assert {k: f[k] for k in HEAD} == HEAD
            ChatCompletionChunk.model_validate(f)


def test_text_with_cache_usage(replay):
    frames, enc = replay("text_cache.sse")
    validate(frames)
    assert frames[0]["id"] == "chatcmpl-msg_01TextCache"
    assert all(f["usage"] is None for f in frames[:-2])
    assert frames[0]["choices"][0] == {
        "index": 0,
        "delta": {"role": "assistant", "content": ""},
        "logprobs": None,
        "finish_reason": None,
    }
    assert deltas(frames) == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Hello"}, None),
        ({"content": ", wörld! ☃"}, None),
        ({}, "stop"),
        (
            "usage",
            {
                "prompt_tokens": 12 + 2048 + 1024,
                "completion_tokens": 7,
                "total_tokens": 12 + 2048 + 1024 + 7,
                "prompt_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 2048},
                "completion_tokens_details": {"reasoning_tokens": 0},
                "cache_creation_input_tokens": 2048,
                "cache_read_input_tokens": 1024,
            },
        ),
        "[DONE]",
    ]
    usage = ChatCompletionChunk.model_validate(frames[-2]).usage
    assert usage.prompt_tokens_details.cached_tokens == 1024
    assert enc.usage.to_dict() == {
        "input_tokens": 12,
        "output_tokens": 7,
        "cache_read_tokens": 1024,
        "cache_write_5m_tokens": 2048,
        "cache_write_1h_tokens": 0,
    }


def test_without_include_usage_no_usage_key(replay):
    frames, _ = replay("text_cache.sse", include_usage=False)
    validate(frames)
    assert all("usage" not in f for f in frames if f != "[DONE]")
    assert deltas(frames)[-2:] == [({}, "stop"), "[DONE]"]


def test_tool_use_fragments(replay):
    frames, enc = replay("tool_use.sse")
    validate(frames)
    assert deltas(frames)[:-2] == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "I"}, None),
        ({"content": "'ll check the current weather in Paris for you."}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_01NRLabsLyVHZPKxbKvkfSMn",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"locati'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": 'on": "P'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": "ar"}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": 'is"}'}}]}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "toolu_01SecondCallRome",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 1, "function": {"arguments": '{"location": "Rome"}'}}]}, None),
        ({}, "tool_calls"),
    ]
    assert frames[-2]["usage"]["prompt_tokens"] == 377 and frames[-2]["usage"]["completion_tokens"] == 65
    # An OpenAI client accumulating the fragments gets valid JSON arguments.
    args: dict[int, str] = {}
    for f in frames[:-1]:
        if f["choices"]:
            for tc in f["choices"][0]["delta"].get("tool_calls", []):
                args[tc["index"]] = args.get(tc["index"], "") + tc["function"]["arguments"]
    assert {k: orjson.loads(v) for k, v in args.items()} == {0: {"location": "Paris"}, 1: {"location": "Rome"}}
    assert enc.usage.input_tokens == 377 and enc.usage.output_tokens == 65


def test_thinking_and_signature(replay):
    frames, _ = replay("thinking.sse")
    validate(frames)
    sig = "c3ludGhldGljLXNpZ25hdHVyZS1maXh0dXJlLWEtbm90LWEtcmVhbC1zaWduYXR1cmU="
    full = "Simple educational question about what a solar eclipse is."
    assert deltas(frames) == [
        ({"role": "assistant", "content": ""}, None),
        ({"reasoning_content": "Simple educ", "reasoning": "Simple educ"}, None),
        (
            {
                "reasoning_content": "ational question about what a solar eclipse is.",
                "reasoning": "ational question about what a solar eclipse is.",
            },
            None,
        ),
        (
            {"reasoning_signature": sig, "thinking_blocks": [{"type": "thinking", "thinking": full, "signature": sig}]},
            None,
        ),
        ({"content": "Hi"}, None),
        ({}, "stop"),
        (
            "usage",
            {
                "prompt_tokens": 28,
                "completion_tokens": 106,
                "total_tokens": 134,
                "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 67},
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        ),
        "[DONE]",
    ]


def test_redacted_thinking(replay):
    frames, enc = replay("redacted_thinking.sse")
    validate(frames)
    data = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj2hMsd1ZLnDg9Qtr6sH"  # noqa: E501
    assert deltas(frames)[:-2] == [
        ({"role": "assistant", "content": ""}, None),
        ({"redacted_reasoning": data, "thinking_blocks": [{"type": "redacted_thinking", "data": data}]}, None),
        ({"reasoning_content": "Let me answer.", "reasoning": "Let me answer."}, None),
        (
            {
                "reasoning_signature": "EqQBCkgIARABGAIiQL2UoU0b1OHYi",
                "thinking_blocks": [
                    {"type": "thinking", "thinking": "Let me answer.", "signature": "EqQBCkgIARABGAIiQL2UoU0b1OHYi"}
                ],
            },
            None,
        ),
        ({"content": "42"}, None),
        ({}, "length"),
    ]
    assert frames[-2]["usage"]["prompt_tokens_details"]["cached_tokens"] == 3000
    assert enc.usage.cache_read_tokens == 3000


def test_upstream_error_event(replay):
    frames, _ = replay("error.sse")
    assert deltas(frames) == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Par"}, None),
        ("error", {"message": "Overloaded", "type": "server_error", "param": None, "code": "overloaded"}),
        "[DONE]",
    ]


def test_error_method_and_nothing_after_done():
    enc = ChatStreamEncoder(model="m", created=1, include_usage=False)
    out = enc.error("rate_limit_error", "slow down", 429)
    assert parse_frames(out) == [
        {"error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"}},
        "[DONE]",
    ]
    assert enc.feed({"type": "message_stop"}) == b"" and enc.finish() == b"" and enc.error("x", "y", 500) == b""
    enc = ChatStreamEncoder(model="m", created=1, include_usage=False)
    assert parse_frames(enc.error("weird_kind", "boom", 503))[0]["error"]["type"] == "server_error"


def test_openai_sdk_raises_on_error_frame():
    import httpx
    import openai

    body = load_fixture("error.sse")
    raw, _ = encode_pieces([body])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw)

    client = openai.OpenAI(
        api_key="k", base_url="http://gw/v1", http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    got = []
    with pytest.raises(openai.APIError, match="Overloaded"):
        for chunk in client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], stream=True
        ):
            got.append(chunk.choices[0].delta.content)
    assert got == ["", "Par"]


def test_openai_sdk_reads_full_stream():
    import httpx
    import openai

    raw, _ = encode_pieces([load_fixture("tool_use.sse")])
    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw)
    )
    client = openai.OpenAI(api_key="k", base_url="http://gw/v1", http_client=httpx.Client(transport=transport))
    chunks = list(
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].usage.total_tokens == 377 + 65
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_truncated_stream_reported_as_error():
    body = load_fixture("text_cache.sse")
    cut = body[: body.index(b"event: message_delta")]
    frames = parse_frames(encode_pieces([cut])[0])
    assert frames[-2]["error"]["type"] == "server_error" and frames[-1] == "[DONE]"
    assert all(f["choices"][0]["finish_reason"] is None for f in frames[:-2])


def test_missing_message_stop_still_finishes():
    body = load_fixture("text_cache.sse")
    cut = body[: body.index(b"event: message_stop")]
    assert parse_frames(encode_pieces([cut])[0]) == parse_frames(encode_pieces([body])[0])


def test_unknown_events_and_blocks_ignored():
    enc = ChatStreamEncoder(model="m", created=1, include_usage=False)
    out = enc.feed({"type": "message_start", "message": {"id": "msg_x", "usage": {"input_tokens": 3}}})
    for ev in [
        {"type": "ping"},
        {"type": "brand_new_event", "x": 1},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "citations_delta", "citation": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": ""}},
        {"type": "content_block_stop", "index": 0},
    ]:
        assert enc.feed(ev) == b""
    enc.feed({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}})
    frames = parse_frames(out + enc.feed({"type": "message_stop"}) + enc.finish())
    assert deltas(frames) == [({"role": "assistant", "content": ""}, None), ({}, "stop"), "[DONE]"]


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(ALL_FIXTURES),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=25),
    include_usage=st.booleans(),
)
def test_split_anywhere_gives_same_chunks(name, cuts, include_usage):
    body = load_fixture(name)
    whole, enc_whole = encode_pieces([body], include_usage=include_usage)
    points = sorted({c % (len(body) + 1) for c in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    split, enc_split = encode_pieces(pieces, include_usage=include_usage)
    assert split == whole
    assert enc_split.usage == enc_whole.usage


def test_chunk_bytes_are_the_serialized_chunk_exactly() -> None:
    """The prebuilt chunk frame (ChatStreamEncoder._chunk) gives the same bytes as serializing the chunk."""
    import orjson as _orjson

    from orgate.dialects.openai_chat import ChatStreamEncoder as _Enc

    for include_usage in (False, True):
        enc = _Enc(model='claude "q" \u00e9', created=1_700_000_000, include_usage=include_usage)
        deltas = [{"role": "assistant", "content": ""}, {"content": "Hi \u2603 \"x\"\n"},
                  {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":1}"}}]}]
        for i, delta in enumerate(deltas):
            if i == 1:
                enc._id = "chatcmpl-other"  # the id can change before the first chunk (message_start)
            want = {"id": enc._id, "object": "chat.completion.chunk", "created": 1_700_000_000,
                    "model": 'claude "q" \u00e9',
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]}
            if include_usage:
                want["usage"] = None
            assert enc._chunk(delta) == b"data: " + _orjson.dumps(want) + b"\n\n"


_EVENTS = st.sampled_from([
    {"type": "message_start", "message": {"id": "msg_a", "usage": {"input_tokens": 3}}},
    {"type": "message_start", "message": {"id": "msg_b"}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "thinking", "thinking": ""}},
    {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "t", "name": "f"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hé \"x\"\n"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 7}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}},
    {"type": "content_block_delta", "index": 5, "delta": {"type": "text_delta", "text": "no block"}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "thinking_delta", "thinking": "hm"}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
    {"type": "content_block_delta", "index": 0, "delta": None},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
    {"type": "message_stop"},
    {"type": "ping"},
])


@settings(max_examples=200)
@given(st.lists(_EVENTS, max_size=12), st.booleans())
def test_text_delta_shortcut_is_the_general_way(events, include_usage):
    """feed's shortcut for text deltas gives the bytes _block_delta and _chunk give."""
    fast = ChatStreamEncoder(model="m", created=1, include_usage=include_usage)
    slow = ChatStreamEncoder(model="m", created=1, include_usage=include_usage)
    slow._id = fast._id  # chat_id(None) is random
    for e in events:
        want = (slow._block_delta(e.get("index"), e.get("delta") or {}) if e["type"] == "content_block_delta"
                else slow.feed(e))
        assert fast.feed(e) == want
    assert fast.finish() == slow.finish()
