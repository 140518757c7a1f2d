"""Codex's server-side compaction and WebSocket attempt, through the official openai SDK and raw HTTP.

A compaction (the `compaction_trigger` item on /v1/responses, or POST /v1/responses/compact) is a Claude
summarization of the conversation; its one compaction item carries the summary sealed for the key, and
comes back in later input as a user turn with the summary.
"""

from __future__ import annotations

import httpx
import openai
import pytest

from orgate.dialects.openai_responses.items import SUMMARY_PREFIX
from tests.fakes.anthropic_fake import Reply, text

HISTORY = [
    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Create hello.txt"}]},
    {"type": "function_call", "call_id": "call_1", "name": "exec_command", "arguments": '{"cmd": "printf hi > hello.txt"}'},
    {"type": "function_call_output", "call_id": "call_1", "output": "exit code 0"},
]
SUMMARY = "The user asked for hello.txt; it was created with printf. Nothing remains."


def _client(gateway, key) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def _summary_requests(fake):
    return [r for r in fake.requests if "compact a coding agent" in str(r["body"].get("system"))]


def test_compaction_trigger_streams_one_compaction_item(gateway, fake, key):
    fake.push(Reply(blocks=[{"type": "text", "text": SUMMARY}], usage={"input_tokens": 700, "output_tokens": 40}))
    client = _client(gateway, key)
    with client.responses.stream(model="claude-sonnet-4.5", input=[*HISTORY, {"type": "compaction_trigger"}],
                                 tools=[{"type": "function", "name": "exec_command", "parameters": {"type": "object"}}],
                                 store=False) as s:
        kinds = [e.type for e in s]
        final = s.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [o.type for o in final.output] == ["compaction"]
    item = final.output[0]
    assert item.encrypted_content.startswith("orgate.v1.") and SUMMARY not in item.encrypted_content
    # The upstream saw a summarization: no tools, the transcript as text, the tool call and result in it.
    (up,) = _summary_requests(fake)
    assert "tools" not in up["body"] and "thinking" not in up["body"]
    prompt = up["body"]["messages"][0]["content"][0]["text"]
    assert "Create hello.txt" in prompt and "called tool exec_command" in prompt and "exit code 0" in prompt
    assert "You are Codex." not in prompt  # instructions are re-sent by the client, not summarized
    (row,) = gateway.ledger(1, key_id=gateway.key_id(key), endpoint="responses")  # its own key: this test's row
    assert row["input_tokens"] == 700 and row["cost_micros"] > 0

    # The item comes back in the next request: the model sees the summary as a user turn.
    fake.push(text("Continuing."))
    client.responses.create(model="claude-sonnet-4.5", store=False,
                            input=[HISTORY[1], item.model_dump(), {"role": "user", "content": "go on"}])
    msgs = fake.last["body"]["messages"]
    assert msgs[0]["role"] == "user"
    texts = [b["text"] for b in msgs[0]["content"] if b["type"] == "text"]
    assert SUMMARY_PREFIX + SUMMARY in texts and "go on" in texts


def test_compact_endpoint_returns_user_messages_then_the_item(gateway, fake, key):
    fake.push(Reply(blocks=[{"type": "text", "text": SUMMARY}], usage={"input_tokens": 500, "output_tokens": 30}))
    client = _client(gateway, key)
    out = client.responses.compact(model="claude-sonnet-4.5", input=HISTORY)
    assert out.object == "response.compaction"
    assert [(o.type, getattr(o, "role", None)) for o in out.output] == [("message", "user"), ("compaction", None)]
    assert out.usage.input_tokens == 500 and out.usage.output_tokens == 30
    assert "stream" not in _summary_requests(fake)[0]["body"]
    (row,) = gateway.ledger(1, key_id=gateway.key_id(key), endpoint="responses/compact")
    assert row["status"] == 200 and row["cost_micros"] > 0


def test_compaction_item_opens_only_for_its_key(gateway, fake, key):
    fake.push(text(SUMMARY))
    item = _client(gateway, key).responses.compact(model="claude-sonnet-4.5", input=HISTORY).output[-1].model_dump()
    other = gateway.create_key("another-key")
    fake.push(text("ok"))
    foreign = {"type": "compaction", "id": "cmp_x", "encrypted_content": "gAAAAABopenai-own-compaction"}
    _client(gateway, other).responses.create(model="claude-sonnet-4.5", store=False,
                                             input=[item, foreign, {"role": "user", "content": "next"}])
    sent = str(fake.last["body"]["messages"])
    assert SUMMARY not in sent and "Summary of the earlier part" not in sent and "next" in sent


def test_websocket_attempt_gets_426_at_once(gateway, key):
    r = httpx.get(gateway.url + "/v1/responses", headers={
        "authorization": f"Bearer {key}", "connection": "Upgrade", "upgrade": "websocket",
        "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "openai-beta": "responses_websockets=2026-02-06"})
    assert r.status_code == 426 and r.headers["x-should-retry"] == "false"
    assert "POST /v1/responses" in r.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/responses/compact"])
def test_compact_endpoint_needs_a_key(gateway, fake, path):
    r = httpx.post(gateway.url + path, json={"model": "claude-sonnet-4.5", "input": HISTORY})
    assert r.status_code == 401 and fake.requests == []
