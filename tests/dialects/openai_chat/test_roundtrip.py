"""Turn 1's answer (thinking + signature + tool calls) replayed as the assistant message of turn 2."""

from __future__ import annotations

import orjson
import pytest

from orgate.dialects.openai_chat.request import ChatOptions, to_anthropic
from orgate.dialects.openai_chat.response import from_anthropic

from .conftest import encode_pieces, load_fixture, parse_frames

OPTS = ChatOptions(upstream_model="claude-sonnet-4-5-20250929")
SIG = "EqQBCkgIARABGAIiQL2UoU0b1OHYi+/x=="
TURN1 = {
    "id": "msg_01Turn1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "Two cities, two calls.", "signature": SIG},
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "toolu_01P", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_01R", "name": "get_weather", "input": {"city": "Rome", "units": ["c"]}},
    ],
    "stop_reason": "tool_use",
    "usage": {"input_tokens": 50, "output_tokens": 80},
}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def turn2(assistant: dict) -> dict:
    body = {
        "model": "m",
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "max_tokens": 8000,
        "tools": TOOLS,
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            assistant,
            {"role": "tool", "tool_call_id": "toolu_01P", "content": "18C"},
            {"role": "tool", "tool_call_id": "toolu_01R", "content": "22C"},
        ],
    }
    out, _ = to_anthropic(orjson.loads(orjson.dumps(body)), OPTS)  # through JSON, as a client would send it
    return out


EXPECTED_ASSISTANT = {
    "role": "assistant",
    "content": [
        {"type": "thinking", "thinking": "Two cities, two calls.", "signature": SIG},
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "toolu_01P", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_01R", "name": "get_weather", "input": {"city": "Rome", "units": ["c"]}},
    ],
}


def test_litellm_style_replay_of_whole_message():
    msg = from_anthropic(TURN1, model="m", created=1)["choices"][0]["message"]
    out = turn2(msg)
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert out["messages"][1] == EXPECTED_ASSISTANT
    assert out["messages"][1]["content"][0]["signature"] == SIG
    assert out["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01P", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_01R", "content": "22C"},
        ],
    }


@pytest.mark.parametrize("form", ["orq_parts", "orq_flat", "thinking_blocks_only"])
def test_replay_forms(form):
    msg = from_anthropic(TURN1, model="m", created=1)["choices"][0]["message"]
    base = {"role": "assistant", "tool_calls": msg["tool_calls"]}
    if form == "orq_parts":
        assistant = {
            **base,
            "content": [
                {"type": "reasoning", "reasoning": msg["reasoning"], "signature": msg["reasoning_signature"]},
                {"type": "text", "text": msg["content"]},
            ],
        }
    elif form == "orq_flat":
        assistant = {
            **base,
            "content": msg["content"],
            "reasoning": msg["reasoning"],
            "reasoning_signature": msg["reasoning_signature"],
        }
    else:
        assistant = {**base, "content": msg["content"], "thinking_blocks": msg["thinking_blocks"]}
    assert turn2(assistant)["messages"][1] == EXPECTED_ASSISTANT


def test_streamed_turn1_accumulated_by_client_replays():
    """A client that concatenates content / arguments and keeps thinking_blocks from the stream can replay turn 1."""
    frames = parse_frames(encode_pieces([load_fixture("thinking_tool_use.sse")])[0])
    content, blocks, calls = "", [], {}
    for f in frames:
        if f == "[DONE]" or not f["choices"]:
            continue
        d = f["choices"][0]["delta"]
        content += d.get("content") or ""
        blocks += d.get("thinking_blocks") or []
        for tc in d.get("tool_calls") or []:
            call = calls.setdefault(
                tc["index"], {"id": None, "type": "function", "function": {"name": None, "arguments": ""}}
            )
            call["id"] = tc.get("id") or call["id"]
            call["function"]["name"] = tc["function"].get("name") or call["function"]["name"]
            call["function"]["arguments"] += tc["function"].get("arguments") or ""
    assistant = {
        "role": "assistant",
        "content": content,
        "thinking_blocks": blocks,
        "tool_calls": [calls[k] for k in sorted(calls)],
    }
    assert turn2(assistant)["messages"][1] == EXPECTED_ASSISTANT
