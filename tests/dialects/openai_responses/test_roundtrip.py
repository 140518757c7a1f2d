"""Turn 1 output items go back as turn-2 input: the signed thinking must reach Claude byte-identical."""

from __future__ import annotations

from orgate.dialects.openai_responses import ResponsesOptions, ResponsesStreamEncoder, from_anthropic, to_anthropic

from .conftest import anthropic_events, load_json, parse_sse

CODEX = load_json("codex_write.json")[0]["body"]
OPTS = ResponsesOptions(upstream_model="claude-sonnet-4-5", key_id="key_1")
SIGNED = {
    "type": "thinking",
    "thinking": "The user wants hello.txt. I'll write it with printf.",
    "signature": "EqQBCkYIBhgCIkBzaWduYXR1cmUtZml4dHVyZS1ub3QtcmVhbA==",
}
REDACTED = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlx"}


def _as_codex_sends(items: list[dict]) -> list[dict]:
    """Codex re-sends items without `id` (skip_serializing) and without status on reasoning."""
    return [{k: v for k, v in item.items() if k != "id"} for item in items]


def _turn2(items: list[dict]) -> dict:
    fc = next(i for i in items if i["type"] == "function_call")
    return {
        **CODEX,
        "input": [
            *CODEX["input"],
            *_as_codex_sends(items),
            {"type": "function_call_output", "call_id": fc["call_id"], "output": "exit 0"},
        ],
    }


def _check(body: dict) -> None:
    user, assistant, result = body["messages"][-3:]
    assert assistant == {
        "role": "assistant",
        "content": [
            SIGNED,
            REDACTED,
            {
                "type": "tool_use",
                "id": "toolu_01WriteHello",
                "name": "exec_command",
                "input": {"cmd": "printf '%s' 'hi' > hello.txt"},
            },
        ],
    }
    assert result == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_01WriteHello", "content": "exit 0"}],
    }
    assert body["thinking"]["type"] == "enabled"  # thinking stays on: the tool loop replays its thinking


def test_stream_round_trip(envelope):
    enc = ResponsesStreamEncoder(model="gpt-5", created=1, envelope=envelope, key_id="key_1", request=CODEX)
    raw = enc.start() + b"".join(enc.feed(e) for e in anthropic_events("thinking_tool.sse")) + enc.finish()
    items = parse_sse(raw)[-1][1]["response"]["output"]
    body, _ = to_anthropic(_turn2(items), OPTS, envelope)
    _check(body)


def test_non_stream_round_trip(envelope):
    msg = {
        "id": "msg_1",
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 1, "output_tokens": 1},
        "content": [
            SIGNED,
            REDACTED,
            {
                "type": "tool_use",
                "id": "toolu_01WriteHello",
                "name": "exec_command",
                "input": {"cmd": "printf '%s' 'hi' > hello.txt"},
            },
        ],
    }
    resp = from_anthropic(msg, model="gpt-5", created=1, envelope=envelope, key_id="key_1", request=CODEX)
    body, _ = to_anthropic(_turn2(resp["output"]), OPTS, envelope)
    _check(body)


def test_other_key_cannot_replay(envelope):
    msg = {
        "id": "msg_1",
        "stop_reason": "tool_use",
        "usage": {},
        "content": [SIGNED, {"type": "tool_use", "id": "toolu_1", "name": "exec_command", "input": {}}],
    }
    resp = from_anthropic(msg, model="gpt-5", created=1, envelope=envelope, key_id="key_1", request=CODEX)
    body, _ = to_anthropic(_turn2(resp["output"]), ResponsesOptions(upstream_model="c", key_id="key_2"), envelope)
    assistant = body["messages"][-2]
    assert [b["type"] for b in assistant["content"]] == ["tool_use"]
    assert "thinking" not in body  # no replayable thinking for this tool loop -> thinking off, not a 400
