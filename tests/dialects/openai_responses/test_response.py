from __future__ import annotations

import copy

from orgate.dialects.openai_responses import ResponsesOptions, from_anthropic, to_anthropic

from .conftest import load_json, validate_response

CODEX = load_json("codex_write.json")[0]["body"]
THINK = {"type": "thinking", "thinking": "Need to write the file.", "signature": "EqQBsig=="}
MESSAGE = {
    "id": "msg_01AbC",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        THINK,
        {"type": "text", "text": "I'll create it.", "citations": None},
        {
            "type": "tool_use",
            "id": "toolu_01X",
            "name": "exec_command",
            "input": {"cmd": "printf hi > hello.txt"},
            "caller": {"type": "direct"},
        },
        {"type": "tool_use", "id": "toolu_01Y", "name": "multi_agent_v1__spawn_agent", "input": {"task": "t"}},
    ],
    "stop_reason": "tool_use",
    "usage": {
        "input_tokens": 100,
        "cache_creation_input_tokens": 20,
        "cache_read_input_tokens": 300,
        "output_tokens": 50,
        "output_tokens_details": {"thinking_tokens": 30},
    },
}


def test_from_anthropic_codex(envelope):
    before = copy.deepcopy(MESSAGE)
    resp = from_anthropic(MESSAGE, model="gpt-5", created=1767225600, envelope=envelope, key_id="k", request=CODEX)
    assert MESSAGE == before
    validate_response(resp)  # incl. Codex's echoed namespace / web_search tools
    assert resp["id"] == "resp_01AbC" and resp["object"] == "response" and resp["status"] == "completed"
    rs, msg, fc, ns = resp["output"]
    assert rs["id"] == "rs_01AbC_1" and rs["summary"] == [{"type": "summary_text", "text": "Need to write the file."}]
    assert envelope.open(rs["encrypted_content"], key_id="k") == [THINK]
    assert msg == {
        "id": "msg_01AbC_2",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "I'll create it.", "annotations": []}],
    }
    assert fc == {
        "id": "fc_01AbC_3",
        "type": "function_call",
        "status": "completed",
        "call_id": "toolu_01X",
        "name": "exec_command",
        "arguments": '{"cmd":"printf hi > hello.txt"}',
    }
    assert ns["name"] == "spawn_agent" and ns["namespace"] == "multi_agent_v1"
    assert resp["usage"] == {
        "input_tokens": 420,
        "input_tokens_details": {"cached_tokens": 300, "cache_write_tokens": 20},
        "output_tokens": 50,
        "output_tokens_details": {"reasoning_tokens": 30},
        "total_tokens": 470,
    }


def test_incomplete_and_refusal(envelope):
    for reason, detail in (
        ("max_tokens", "max_output_tokens"),
        ("model_context_window_exceeded", "max_output_tokens"),
        ("refusal", "content_filter"),
    ):
        msg = {
            "id": "msg_1",
            "content": [{"type": "text", "text": "par"}],
            "stop_reason": reason,
            "usage": {"input_tokens": 1, "output_tokens": 2},
        }
        resp = from_anthropic(msg, model="m", created=1, envelope=envelope, key_id="k", request={"input": "x"})
        validate_response(resp)
        assert resp["status"] == "incomplete" and resp["incomplete_details"] == {"reason": detail}


def test_custom_and_local_shell_calls(envelope):
    req = {"input": "x", "tools": [{"type": "custom", "name": "apply_patch"}, {"type": "local_shell"}]}
    msg = {
        "id": "msg_1",
        "stop_reason": "tool_use",
        "usage": {},
        "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "apply_patch", "input": {"input": "*** Begin"}},
            {
                "type": "tool_use",
                "id": "toolu_2",
                "name": "local_shell",
                "input": {"command": ["ls", "-la"], "workdir": "/w"},
            },
        ],
    }
    resp = from_anthropic(msg, model="m", created=1, envelope=envelope, key_id="k", request=req)
    validate_response(resp)
    ctc, lsh = resp["output"]
    assert (ctc["type"], ctc["name"], ctc["input"], ctc["call_id"]) == (
        "custom_tool_call",
        "apply_patch",
        "*** Begin",
        "toolu_1",
    )
    assert lsh["type"] == "local_shell_call" and lsh["action"]["command"] == ["ls", "-la"]
    # and they replay as the same tool_use blocks
    body, _ = to_anthropic(
        {"input": ["x" and {"role": "user", "content": "x"}, *resp["output"]], "tools": req["tools"]},
        ResponsesOptions(upstream_model="c"),
        envelope,
    )
    assert body["messages"][1]["content"] == [{k: v for k, v in b.items()} for b in msg["content"]]
