"""The Anthropic Messages surface through the official anthropic SDK against the fake upstream."""

from __future__ import annotations

import anthropic
import httpx
import openai
import orjson
import pytest

from tests.fakes.anthropic_fake import UPSTREAM_KEY, Reply, text, tool_use


@pytest.fixture
def client(gateway, key) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


def test_create_forwards_with_provider_credentials(client, fake, gateway, key):
    m = client.messages.create(model="claude-sonnet-4.5", max_tokens=256,
                               messages=[{"role": "user", "content": "Say hello"}])
    assert m.content[0].text == "Hello! I am Claude."
    assert m.usage.input_tokens == 12 and m.usage.output_tokens == 9
    up = fake.last
    assert up["body"]["model"] == "claude-sonnet-4-5-20250929"
    assert up["headers"]["x-api-key"] == UPSTREAM_KEY  # never the client's key
    assert key not in str(up["headers"])
    assert up["headers"]["anthropic-version"] == "2026-10-21"  # the SDK's version, forwarded as sent
    # The body the client sent reaches the upstream byte for byte apart from the spliced model id.
    assert b'"max_tokens":256' in up["raw"]


def test_upstream_ids_and_prefixed_ids_resolve(client, fake):
    for name in ("claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5-20250929", "anthropic/claude-haiku-4.5",
                 "claude-opus-4.7"):
        client.messages.create(model=name, max_tokens=16, messages=[{"role": "user", "content": "x"}])
    sent = [r["body"]["model"] for r in fake.requests]
    assert sent == ["claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001",
                    "claude-opus-4-7"]


def test_stream_helper_final_message_and_usage(client, fake):
    fake.push(Reply(blocks=[{"type": "text", "text": "Streaming works fine, thanks for asking."}],
                    usage={"input_tokens": 30, "output_tokens": 11, "cache_read_input_tokens": 5}))
    with client.messages.stream(model="claude-sonnet-4.5", max_tokens=256,
                                messages=[{"role": "user", "content": "hi"}]) as s:
        deltas = [t for t in s.text_stream]
        final = s.get_final_message()
    assert "".join(deltas) == "Streaming works fine, thanks for asking."
    assert len(deltas) > 3  # relayed event by event, not as one buffered block
    assert final.usage.output_tokens == 11 and final.usage.cache_read_input_tokens == 5


def test_raw_stream_keeps_ping_and_grammar(gateway, key, fake):
    body = {"model": "claude-sonnet-4.5", "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(gateway.url + "/v1/messages", json=body,
                   headers={"x-api-key": key, "anthropic-version": "2023-06-01"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [line[7:] for line in r.text.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert "ping" in events
    assert r.headers["request-id"].startswith("req_fake")  # the upstream's request id is relayed


def test_tool_round_trip(client, fake):
    tools = [{"name": "write_file", "description": "Write a file",
              "input_schema": {"type": "object", "properties": {"path": {"type": "string"},
                                                                "content": {"type": "string"}}}}]
    fake.push(tool_use("write_file", {"path": "hello.txt", "content": "hi there, a longer content string"}),
              text("Done."))
    with client.messages.stream(model="claude-sonnet-4.5", max_tokens=1024, tools=tools,
                                messages=[{"role": "user", "content": "write it"}]) as s:
        first = s.get_final_message()
    tu = first.content[0]
    assert first.stop_reason == "tool_use" and tu.type == "tool_use"
    assert tu.input == {"path": "hello.txt", "content": "hi there, a longer content string"}
    second = client.messages.create(
        model="claude-sonnet-4.5", max_tokens=1024, tools=tools,
        messages=[{"role": "user", "content": "write it"},
                  {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tu.id, "content": "ok"}]}])
    assert second.content[0].text == "Done."
    sent = fake.last["body"]["messages"]
    assert sent[2]["content"][0] == {"type": "tool_result", "tool_use_id": tu.id, "content": "ok"}


def test_thinking_signature_round_trip_byte_for_byte(client, fake):
    sig = "EqQBCkYIBxgCKkDx+/=" + "A" * 300 + "\u00e9/+=="
    fake.push(Reply(blocks=[{"type": "thinking", "thinking": "Let me think about 6*7 carefully.", "signature": sig},
                            {"type": "text", "text": "42"}]))
    with client.messages.stream(model="claude-sonnet-4.5", max_tokens=4096,
                                thinking={"type": "enabled", "budget_tokens": 1024},
                                messages=[{"role": "user", "content": "6*7?"}]) as s:
        first = s.get_final_message()
    assert first.content[0].type == "thinking" and first.content[0].signature == sig
    assert fake.last["body"]["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    client.messages.create(
        model="claude-sonnet-4.5", max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "6*7?"},
                  {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                  {"role": "user", "content": "and 6*8?"}])
    up = fake.last
    block = up["body"]["messages"][1]["content"][0]
    assert block["type"] == "thinking" and block["signature"] == sig
    assert block["thinking"] == "Let me think about 6*7 carefully."
    # the exact bytes the SDK serialized are the bytes the upstream received
    assert orjson.dumps(sig) in up["raw"] or sig.encode() in up["raw"]


def test_unknown_fields_betas_and_versions_pass_through(gateway, key, fake):
    body = {"model": "claude-sonnet-4.5", "max_tokens": 32000, "stream": True,
            "context_management": {"edits": [{"keep": "all", "type": "clear_thinking_20251015"}]},
            "thinking": {"budget_tokens": 31999, "display": "omitted", "type": "enabled"},
            "tools": [{"name": "Bash", "description": "run", "defer_loading": True,
                       "input_schema": {"type": "object", "properties": {}}}],
            "some_future_field": {"nested": [1, 2, 3]},
            "messages": [{"role": "user", "content": [{"type": "future_block", "data": "x"},
                                                      {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}]}
    raw = orjson.dumps(body)
    betas = "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27"
    r = httpx.post(gateway.url + "/v1/messages?beta=true", content=raw,
                   headers={"x-api-key": key, "anthropic-version": "2099-01-01", "anthropic-beta": betas,
                            "content-type": "application/json"})
    assert r.status_code == 200, r.text
    up = fake.last
    assert up["headers"]["anthropic-beta"] == betas
    assert up["headers"]["anthropic-version"] == "2099-01-01"
    assert up["raw"] == raw.replace(b'"claude-sonnet-4.5"', b'"claude-sonnet-4-5-20250929"')


def test_bearer_auth_and_doubled_v1_path(gateway, key, fake):
    c = anthropic.Anthropic(base_url=gateway.url + "/v1", auth_token=key, api_key=None, max_retries=0)
    m = c.messages.create(model="claude-haiku-4.5", max_tokens=16, messages=[{"role": "user", "content": "x"}])
    assert m.content[0].text
    assert fake.last["path"] == "/v1/messages"


def test_count_tokens_forwarded_and_not_billed(client, fake, gateway, key):
    fake.count_tokens_value = 2095
    r = client.messages.count_tokens(model="claude-sonnet-4.5", messages=[{"role": "user", "content": "hello"}])
    assert r.input_tokens == 2095
    assert fake.last["path"] == "/v1/messages/count_tokens"
    assert fake.last["body"]["model"] == "claude-sonnet-4-5-20250929"
    (row,) = gateway.ledger(1, key_id=gateway.key_id(key), endpoint="count_tokens")
    assert row["cost_micros"] == 0 and row["input_tokens"] == 0


def test_models_list_parses_in_both_sdks(gateway, key):
    a = anthropic.Anthropic(base_url=gateway.url, api_key=key)
    ids = [m.id for m in a.models.list(limit=100)]
    assert {"claude-opus-4.7", "claude-sonnet-4.5", "claude-haiku-4.5"} <= set(ids)
    assert a.models.retrieve("claude-sonnet-4-5-20250929").id == "claude-sonnet-4.5"
    page = a.models.list(limit=2)
    assert len(page.data) == 2 and page.has_more
    o = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key)
    oids = [m.id for m in o.models.list()]
    assert set(ids) == set(oids)


def test_models_restricted_to_allowed(gateway):
    k = gateway.create_key("restricted", allowed_models=["claude-haiku-4.5"])
    a = anthropic.Anthropic(base_url=gateway.url, api_key=k, max_retries=0)
    assert [m.id for m in a.models.list()] == ["claude-haiku-4.5"]
    with pytest.raises(anthropic.PermissionDeniedError) as e:
        a.messages.create(model="claude-opus-4.7", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert "not allowed" in str(e.value)
