"""OpenAI Responses (`POST /v1/responses`) through a real orgate against the fake Anthropic upstream, driven by
the official openai SDK's `client.responses.create` (streamed and not), with exact assertions on the
Anthropic requests received: a stateless multi-turn tool loop with thinking carried in the reasoning item's
encrypted_content, the stateless refusal of previous_response_id, errors and key isolation of the envelope.
"""

from __future__ import annotations

import uuid

import openai
import orjson
import pytest

from tests.fakes.anthropic_fake import FakeAnthropic, Reply, error, text

SONNET, UP_SONNET = "claude-sonnet-4.5", "claude-sonnet-4-5-20250929"
SIG = "ErUBCkYIBxgCKkCresponsesSigned+/thinking==" * 3
THINKING = {"type": "thinking", "thinking": "I should call the weather tool for Paris.", "signature": SIG}
TOOLS = [{"type": "function", "name": "get_weather", "description": "Get the weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                         "additionalProperties": False}, "strict": True}]
ANTHROPIC_TOOLS = [{"name": "get_weather", "description": "Get the weather",
                    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                     "required": ["city"], "additionalProperties": False}, "strict": True}]


@pytest.fixture
def client(gateway, key) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def user(t: str) -> dict:
    return {"role": "user", "content": [{"type": "text", "text": t}]}


def _tool_turn(call_id: str = "toolu_01ParisWeather") -> Reply:
    return Reply(blocks=[THINKING, {"type": "tool_use", "id": call_id, "name": "get_weather",
                                    "input": {"city": "Paris"}}], stop_reason="tool_use",
                 usage={"input_tokens": 50, "output_tokens": 30, "cache_read_input_tokens": 400})


def _collect(stream) -> tuple[list[str], object]:
    types, final = [], None
    for event in stream:
        types.append(event.type)
        if event.type in ("response.completed", "response.incomplete", "response.failed"):
            final = event.response
    return types, final


# ---------------------------------------------------------------- simple turns


def test_create_non_streamed(client, fake):
    r = client.responses.create(model=SONNET, instructions="Be brief.", input="Say hello", max_output_tokens=300)
    assert fake.last["body"] == {"model": UP_SONNET, "max_tokens": 300,
                                 "system": [{"type": "text", "text": "Be brief."}], "messages": [user("Say hello")]}
    assert r.object == "response" and r.status == "completed" and r.model == SONNET
    assert r.output_text == "Hello! I am Claude."
    assert r.output[0].type == "message" and r.output[0].content[0].type == "output_text"
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (12, 9, 21)


def test_create_streamed_event_sequence(client, fake):
    fake.push(text("Streaming through the Responses API works.",
                   usage={"input_tokens": 40, "output_tokens": 8, "cache_read_input_tokens": 100,
                          "cache_creation_input_tokens": 60}))
    types, final = _collect(client.responses.create(model=SONNET, input="hi", stream=True))
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert types.count("response.output_text.delta") > 3
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert final.output_text == "Streaming through the Responses API works."
    assert final.usage.input_tokens == 200 and final.usage.input_tokens_details.cached_tokens == 100
    assert fake.last["body"]["stream"] is True and fake.last["body"]["max_tokens"] == 4096


def test_stream_helper_final_response(client, fake):
    with client.responses.stream(model=SONNET, input=[{"role": "user", "content": "hi"}]) as s:
        deltas = [e.delta for e in s if e.type == "response.output_text.delta"]
        final = s.get_final_response()
    assert "".join(deltas) == final.output_text == "Hello! I am Claude."


def test_json_schema_text_format(client, fake):
    fake.push(text('{"name":"Ada"}'))
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
              "additionalProperties": False}
    r = client.responses.create(model=SONNET, input="Who wrote the first program?",
                                text={"format": {"type": "json_schema", "name": "person", "schema": schema,
                                                 "strict": True}})
    assert fake.last["body"]["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert orjson.loads(r.output_text) == {"name": "Ada"}


# ---------------------------------------------------------------- multi-turn tool loop with thinking


def _assert_second_request(fake: FakeAnthropic, call_id: str = "toolu_01ParisWeather") -> None:
    first, second = fake.requests[-2]["body"], fake.requests[-1]["body"]
    assert first == {"model": UP_SONNET, "max_tokens": 2048 + 4096,
                     "system": [{"type": "text", "text": "You are a weather bot."}],
                     "messages": [user("Weather in Paris?")], "tools": ANTHROPIC_TOOLS,
                     "tool_choice": {"type": "auto"},
                     "thinking": {"type": "enabled", "budget_tokens": 2048, "display": "summarized"},
                     **({"stream": True} if "stream" in first else {})}
    assert fake.requests[-2]["headers"]["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert second["messages"] == [
        user("Weather in Paris?"),
        {"role": "assistant", "content": [THINKING, {"type": "tool_use", "id": call_id, "name": "get_weather",
                                                     "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": "18C, cloudy"}]}]
    assert second["thinking"] == first["thinking"]
    assert orjson.dumps(THINKING) in fake.requests[-1]["raw"]  # byte for byte


def _turn(client, input_items, stream: bool):
    kw = dict(model=SONNET, instructions="You are a weather bot.", input=input_items, tools=TOOLS, store=False,
              reasoning={"effort": "low", "summary": "auto"}, include=["reasoning.encrypted_content"])
    if not stream:
        return client.responses.create(**kw)
    types, final = _collect(client.responses.create(**kw, stream=True))
    assert types[0] == "response.created" and types[-1] == "response.completed"
    return final


@pytest.mark.parametrize("stream", [False, True], ids=["non-streamed", "streamed"])
def test_tool_loop_with_thinking(client, fake, stream):
    fake.push(_tool_turn(), text("It is 18C and cloudy in Paris."))
    items: list = [{"role": "user", "content": "Weather in Paris?"}]
    r1 = _turn(client, items, stream)
    kinds = [o.type for o in r1.output]
    assert kinds == ["reasoning", "function_call"]
    reasoning, call = r1.output
    assert reasoning.encrypted_content.startswith("orgate.v1.") and SIG not in reasoning.encrypted_content
    assert reasoning.summary[0].text == THINKING["thinking"]
    assert (call.name, call.call_id, orjson.loads(call.arguments)) == ("get_weather", "toolu_01ParisWeather",
                                                                       {"city": "Paris"})
    assert r1.usage.input_tokens == 450 and r1.usage.input_tokens_details.cached_tokens == 400
    # Stateless like Codex: replay the output items without their ids, plus the tool output.
    for item in r1.output:
        items.append({k: v for k, v in item.model_dump(exclude_none=True).items() if k not in ("id", "status")})
    items.append({"type": "function_call_output", "call_id": call.call_id, "output": "18C, cloudy"})
    r2 = _turn(client, items, stream)
    assert r2.output_text == "It is 18C and cloudy in Paris." and r2.status == "completed"
    _assert_second_request(fake)


def test_streamed_function_call_arguments_events(client, fake):
    fake.push(_tool_turn())
    stream = client.responses.create(model=SONNET, input="Weather in Paris?", tools=TOOLS, stream=True,
                                     reasoning={"effort": "low", "summary": "auto"})
    events = list(stream)
    types = [e.type for e in events]
    assert "response.reasoning_summary_text.delta" in types
    args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert orjson.loads(args) == orjson.loads(done.arguments) == {"city": "Paris"}
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_reasoning_from_another_key_is_not_decoded(gateway, client, fake):
    fake.push(_tool_turn())
    r1 = client.responses.create(model=SONNET, input="Weather in Paris?", tools=TOOLS,
                                 reasoning={"effort": "low"}, include=["reasoning.encrypted_content"])
    reasoning, call = r1.output
    other = openai.OpenAI(base_url=gateway.url + "/v1", api_key=gateway.create_key("key-b"), max_retries=0)
    fake.push(text("ok"))
    other.responses.create(model=SONNET, tools=TOOLS, reasoning={"effort": "low"}, input=[
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "reasoning", "summary": [], "encrypted_content": reasoning.encrypted_content},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "18C"}])
    up = fake.last
    assert SIG.encode() not in up["raw"] and b"thinking\":\"I should" not in up["raw"]
    assert up["body"]["messages"][1]["content"] == [{"type": "tool_use", "id": call.call_id, "name": "get_weather",
                                                     "input": {"city": "Paris"}}]
    assert "thinking" not in up["body"]  # a tool loop whose thinking is gone cannot re-enable thinking


def test_tampered_encrypted_content_is_dropped(client, fake):
    client.responses.create(model=SONNET, input=[
        {"role": "user", "content": "hi"},
        {"type": "reasoning", "summary": [], "encrypted_content": "orgate.v1.AAAAtampered" + "A" * 60},
        {"role": "assistant", "content": "hello"}, {"role": "user", "content": "again"}])
    assert fake.last["body"]["messages"] == [user("hi"), {"role": "assistant", "content": [
        {"type": "text", "text": "hello"}]}, user("again")]


# ---------------------------------------------------------------- errors


def _error_shape(e: openai.APIStatusError) -> dict:
    body = e.response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


def test_previous_response_id_is_a_clear_400(client, fake):
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=SONNET, input="continue", previous_response_id="resp_123")
    err = _error_shape(e.value)
    assert err["param"] == "previous_response_id" and "response store" in err["message"]  # off by default
    assert e.value.response.headers["x-should-retry"] == "false"
    assert fake.requests == []


def test_401_403_404_400(gateway, client, fake):
    bad = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-ant-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.responses.create(model=SONNET, input="hi")
    assert _error_shape(e.value)["code"] == "invalid_api_key"
    disabled = openai.OpenAI(base_url=gateway.url + "/v1", max_retries=0,
                             api_key=gateway.create_key("disabled-resp", status="disabled"))
    with pytest.raises(openai.PermissionDeniedError):
        disabled.responses.create(model=SONNET, input="hi")
    with pytest.raises(openai.NotFoundError) as e:
        client.responses.create(model="gpt-nonexistent", input="hi")
    assert "gpt-nonexistent" in _error_shape(e.value)["message"]
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=SONNET, input=[{"type": "item_reference", "id": "msg_1"}])
    assert _error_shape(e.value)["param"] == "input[0]"
    assert fake.requests == []


def test_429_budget_insufficient_quota(gateway, fake):
    c = openai.OpenAI(base_url=gateway.url + "/v1", max_retries=0,
                      api_key=gateway.create_key("budget-" + uuid.uuid4().hex[:6], budget_micros=1))
    with pytest.raises(openai.RateLimitError) as e:
        c.responses.create(model=SONNET, input="hi")
    assert _error_shape(e.value)["code"] == "insufficient_quota"
    assert e.value.response.headers["x-should-retry"] == "false"


def test_upstream_529(client, fake):
    fake.default = error(529, "overloaded_error", "Overloaded")
    with pytest.raises(openai.InternalServerError) as e:
        client.responses.create(model=SONNET, input="hi")
    assert e.value.status_code == 529 and _error_shape(e.value)["code"] == "overloaded"


def test_context_overflow_code(client, fake):
    fake.push(error(400, "invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum"))
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=SONNET, input="hi")
    assert _error_shape(e.value)["code"] == "context_length_exceeded"


def test_mid_stream_error_is_response_failed(client, fake):
    """Like api.openai.com: an `error` event then `response.failed` (the SDK yields both; Codex acts on them)."""
    fake.push(Reply(blocks=[{"type": "text", "text": "partial"}, {"type": "text", "text": "lost"}],
                    mid_stream_error="overloaded_error"))
    events = list(client.responses.create(model=SONNET, input="hi", stream=True))
    types = [ev.type for ev in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-2:] == ["error", "response.failed"] and "response.completed" not in types
    assert events[-2].message == "Overloaded"
    failed = events[-1].response
    assert failed.status == "failed" and failed.error.code == "server_error" and failed.error.message == "Overloaded"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "partial"
