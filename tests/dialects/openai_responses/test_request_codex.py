"""The real Codex CLI 0.169 request bodies (captured) -> the exact Anthropic bodies."""

from __future__ import annotations

import copy

from orgate.dialects.openai_responses import ResponsesOptions, to_anthropic

from .conftest import load_json

OPTS = ResponsesOptions(upstream_model="claude-sonnet-4-5", key_id="key_1")


def _codex(n: int) -> dict:
    return load_json("codex_write.json")[n]["body"]


def _text(body: dict, i: int, j: int = 0) -> str:
    return body["input"][i]["content"][j]["text"]


def _expected_tools(body: dict) -> list[dict]:
    out = []
    for tool in body["tools"]:
        subs = [(tool["name"] + "__", t) for t in tool["tools"]] if tool["type"] == "namespace" else [("", tool)]
        for prefix, t in subs:
            if t["type"] == "function":
                out.append(
                    {"name": prefix + t["name"], "description": t["description"], "input_schema": t["parameters"]}
                )
    return out


def test_codex_first_turn_exact_body(envelope):
    body = _codex(0)
    before = copy.deepcopy(body)
    out, betas = to_anthropic(body, OPTS, envelope)
    assert body == before  # inputs are never mutated
    assert out == {
        "model": "claude-sonnet-4-5",
        "system": [
            {"type": "text", "text": _text(body, 0)},
            {"type": "text", "text": _text(body, 1, 0)},
            {"type": "text", "text": _text(body, 1, 1)},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": _text(body, 2)},
                    {"type": "text", "text": "Create a file named hello.txt containing exactly: hi"},
                ],
            }
        ],
        "tools": _expected_tools(body),
        "tool_choice": {"type": "auto"},
        # reasoning {"summary":"auto"} without effort -> medium -> 8192 budget + 4096 default answer room
        "thinking": {"type": "enabled", "budget_tokens": 8192, "display": "summarized"},
        "max_tokens": 12288,
        "stream": True,
    }
    assert betas == ["interleaved-thinking-2025-05-14"]
    names = [t["name"] for t in out["tools"]]
    assert "multi_agent_v1__spawn_agent" in names and "web_search" not in names
    assert len(names) == 12


def test_codex_second_turn_exact_body(envelope):
    """Turn 2 carries a foreign reasoning item (sim-enc-...): dropped, so the tool loop has no thinking to
    replay and thinking is switched off for this request instead of earning a 400 upstream."""
    body = _codex(1)
    out, betas = to_anthropic(body, OPTS, envelope)
    assert out["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": _text(body, 2)},
                {"type": "text", "text": "Create a file named hello.txt containing exactly: hi"},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "I'll create hello.txt now."},
                {
                    "type": "tool_use",
                    "id": "call_OyjuWtoGqzH9WTFAMqBssaSe",
                    "name": "exec_command",
                    "input": {"cmd": "printf '%s' 'hi' > hello.txt", "workdir": "<workdir>/codex_write/work"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "call_OyjuWtoGqzH9WTFAMqBssaSe",
                    "content": body["input"][7]["output"],
                }
            ],
        },
    ]
    assert "thinking" not in out
    assert out["max_tokens"] == 4096
    assert betas == []


def test_sdk_tool_roundtrip_second_request(envelope):
    body = load_json("sdk_openai_responses_tool_roundtrip.json")[1]["body"]
    out, betas = to_anthropic(body, OPTS, envelope)
    assert out == {
        "model": "claude-sonnet-4-5",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Create a file named hello.txt containing exactly: hi"}],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "I'll create hello.txt now."},
                    {
                        "type": "tool_use",
                        "id": "call_w2Dj307PlY4Le9PdBVV3z0PE",
                        "name": "write_file",
                        "input": {"path": "hello.txt", "content": "hi"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "call_w2Dj307PlY4Le9PdBVV3z0PE",
                        "content": "wrote <workdir>/sdk_openai/work/openai_resp_tool/hello.txt",
                    }
                ],
            },
        ],
        "tools": [
            {
                "name": "write_file",
                "description": "Write a text file (relative path) with the given content.",
                "input_schema": body["tools"][0]["parameters"],
            }
        ],
        "tool_choice": {"type": "auto"},
        "max_tokens": 4096,
    }
    assert betas == []
