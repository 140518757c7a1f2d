"""Anthropic Message -> chat.completion, validated with the official openai SDK types."""

from __future__ import annotations

import copy

import orjson
import pytest
from openai.types.chat import ChatCompletion

from orgate.dialects.openai_chat.response import from_anthropic

USAGE = {
    "input_tokens": 100,
    "cache_creation_input_tokens": 300,
    "cache_read_input_tokens": 2000,
    "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 100},
    "output_tokens": 50,
    "output_tokens_details": {"thinking_tokens": 20},
    "service_tier": "standard",
}
MESSAGE = {
    "id": "msg_01ABC",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [
        {"type": "thinking", "thinking": "Need weather.", "signature": "EqQBsig=="},
        {"type": "text", "text": "Checking ", "citations": None},
        {"type": "text", "text": "now."},
        {
            "type": "tool_use",
            "id": "toolu_01A",
            "name": "get_weather",
            "input": {"city": "Paris", "n": [1, 2]},
            "caller": {"type": "direct"},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": USAGE,
}


def convert(message: dict) -> dict:
    frozen = copy.deepcopy(message)
    out = from_anthropic(message, model="my-alias", created=1767225600)
    assert message == frozen
    ChatCompletion.model_validate(orjson.loads(orjson.dumps(out)))
    return out


def test_full_message():
    assert convert(MESSAGE) == {
        "id": "chatcmpl-msg_01ABC",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "my-alias",
        "choices": [
            {
                "index": 0,
                "logprobs": None,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "Checking now.",
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": "toolu_01A",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris","n":[1,2]}'},
                        }
                    ],
                    "reasoning_content": "Need weather.",
                    "reasoning": "Need weather.",
                    "thinking_blocks": [{"type": "thinking", "thinking": "Need weather.", "signature": "EqQBsig=="}],
                    "reasoning_signature": "EqQBsig==",
                },
            }
        ],
        "usage": {
            "prompt_tokens": 2400,
            "completion_tokens": 50,
            "total_tokens": 2450,
            "prompt_tokens_details": {"cached_tokens": 2000, "cache_write_tokens": 300},
            "completion_tokens_details": {"reasoning_tokens": 20},
            "cache_creation_input_tokens": 300,
            "cache_read_input_tokens": 2000,
        },
    }


def test_sdk_parses_usage_and_tool_calls():
    cc = ChatCompletion.model_validate(convert(MESSAGE))
    assert cc.usage.prompt_tokens_details.cached_tokens == 2000
    assert cc.usage.prompt_tokens_details.cache_write_tokens == 300
    assert cc.choices[0].message.tool_calls[0].function.arguments == '{"city":"Paris","n":[1,2]}'
    assert cc.choices[0].message.model_extra["thinking_blocks"][0]["signature"] == "EqQBsig=="


@pytest.mark.parametrize(
    "stop,finish",
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
        ("something_new", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reasons(stop, finish):
    msg = {
        "id": "msg_1",
        "content": [{"type": "text", "text": "x"}],
        "stop_reason": stop,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    assert convert(msg)["choices"][0]["finish_reason"] == finish


def test_plain_text_no_reasoning_fields():
    out = convert(
        {
            "id": "msg_2",
            "content": [{"type": "text", "text": "Hi"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 9, "output_tokens": 2},
        }
    )
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "Hi", "refusal": None}
    assert out["usage"] == {
        "prompt_tokens": 9,
        "completion_tokens": 2,
        "total_tokens": 11,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def test_tool_only_content_null_and_server_blocks_dropped():
    out = convert(
        {
            "id": "msg_3",
            "stop_reason": "tool_use",
            "usage": {},
            "content": [
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                {"type": "tool_use", "id": "toolu_2", "name": "f", "input": {}},
            ],
        }
    )
    msg = out["choices"][0]["message"]
    assert msg["content"] is None
    assert msg["tool_calls"] == [{"id": "toolu_2", "type": "function", "function": {"name": "f", "arguments": "{}"}}]


def test_redacted_thinking_fields():
    out = convert(
        {
            "id": "msg_4",
            "stop_reason": "end_turn",
            "usage": {},
            "content": [
                {"type": "redacted_thinking", "data": "RED1"},
                {"type": "thinking", "thinking": "a", "signature": "S1"},
                {"type": "thinking", "thinking": "b", "signature": "S2"},
                {"type": "redacted_thinking", "data": "RED2"},
                {"type": "text", "text": "ok"},
            ],
        }
    )
    msg = out["choices"][0]["message"]
    assert msg["reasoning_content"] == "ab" and msg["reasoning"] == "ab"
    assert msg["reasoning_signature"] == "S2"
    assert msg["redacted_reasoning"] == ["RED1", "RED2"]
    assert msg["thinking_blocks"] == [
        {"type": "redacted_thinking", "data": "RED1"},
        {"type": "thinking", "thinking": "a", "signature": "S1"},
        {"type": "thinking", "thinking": "b", "signature": "S2"},
        {"type": "redacted_thinking", "data": "RED2"},
    ]
    single = convert(
        {"id": "m", "stop_reason": "end_turn", "usage": {}, "content": [{"type": "redacted_thinking", "data": "R"}]}
    )
    assert single["choices"][0]["message"]["redacted_reasoning"] == "R"
    assert "reasoning_signature" not in single["choices"][0]["message"]


def test_refusal():
    out = convert(
        {
            "id": "msg_5",
            "content": [],
            "stop_reason": "refusal",
            "stop_details": {"type": "refusal", "category": "cyber", "explanation": "Not allowed."},
            "usage": {"input_tokens": 5, "output_tokens": 0},
        }
    )
    assert out["choices"][0]["finish_reason"] == "content_filter"
    assert out["choices"][0]["message"]["refusal"] == "Not allowed."
    assert out["choices"][0]["message"]["content"] is None
