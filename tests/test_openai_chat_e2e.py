"""OpenAI Chat Completions through a real orgate against the fake Anthropic upstream, driven by the official
openai SDK and by curl, with exact assertions on the Anthropic request the upstream received.

The first group replays every request example of the router's Anthropic guide (seeds/004) with only the
base URL and key changed; then a tool-using, thinking-enabled multi-turn loop (streamed and not), errors,
a mid-stream failure, cache usage and metering.
"""

from __future__ import annotations

import base64
import subprocess
import uuid

import openai
import orjson
import pytest

from tests.fakes.anthropic_fake import FakeAnthropic, Reply, error, text, tool_use
from tests.gateway import Gateway

SONNET, OPUS = "anthropic/claude-sonnet-4-5-20250929", "anthropic/claude-opus-4-5-20251101"
UP_SONNET, UP_OPUS = "claude-sonnet-4-5-20250929", "claude-opus-4-5-20251101"
SIG = "EpYBCkYIBxgCKkB3Yj+signed/by=anthropic" * 4
THINKING = {"type": "thinking", "thinking": "Let me reason about the weather lookup first.", "signature": SIG}
REDACTED = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3redacted+data=="}
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get current weather for a location",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}
ANTHROPIC_WEATHER = {"name": "get_weather", "description": "Get current weather for a location",
                     "input_schema": {"type": "object", "properties": {"location": {"type": "string"}},
                                      "required": ["location"]}}


@pytest.fixture
def client(gateway, key) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v2/router", api_key=key, max_retries=0)


def user(t: str) -> dict:
    return {"role": "user", "content": [{"type": "text", "text": t}]}


def curl(gateway: Gateway, key: str, body: dict, path: str = "/v2/router/chat/completions") -> tuple[int, dict]:
    """The seed's curl command with only the host and key changed."""
    p = subprocess.run(["curl", "-sS", "-X", "POST", gateway.url + path, "-H", f"Authorization: Bearer {key}",
                        "-H", "Content-Type: application/json", "-d", orjson.dumps(body).decode(),
                        "-w", "\n%{http_code}"], capture_output=True, text=True, timeout=30, check=True)
    payload, _, status = p.stdout.rpartition("\n")
    return int(status), orjson.loads(payload)


def new_key(gateway: Gateway, **fields) -> tuple[str, int]:
    name = "e2e-" + uuid.uuid4().hex[:12]
    k = gateway.create_key(name, **fields)
    return k, gateway.query("SELECT id FROM keys WHERE name = :n", n=name)[0]["id"]


# ---------------------------------------------------------------- the seed's examples


def test_seed_quick_start_sdk(client, fake):
    r = client.chat.completions.create(model=SONNET, max_tokens=1024,
                                       messages=[{"role": "user", "content": "Explain quantum computing in simple terms"}])
    assert fake.last["body"] == {"model": UP_SONNET, "max_tokens": 1024,
                                 "messages": [user("Explain quantum computing in simple terms")]}
    assert r.object == "chat.completion" and r.model == SONNET
    assert r.choices[0].message.content == "Hello! I am Claude." and r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.role == "assistant" and r.id.startswith("chatcmpl-msg_")
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (12, 9, 21)


def test_seed_curl_chat_completion(gateway, key, fake):
    status, body = curl(gateway, key, {"model": SONNET, "max_tokens": 1024, "messages": [
        {"role": "user", "content": "Explain quantum computing in simple terms"}]})
    assert status == 200
    assert body["choices"][0]["message"]["content"] == "Hello! I am Claude."
    assert fake.last["body"] == {"model": UP_SONNET, "max_tokens": 1024,
                                 "messages": [user("Explain quantum computing in simple terms")]}
    assert fake.last["headers"]["x-api-key"] != key and key not in str(fake.last["headers"])


def test_seed_streaming(client, fake):
    story = "Once upon a time a gateway translated every event, one chunk after another."
    fake.push(text(story))
    stream = client.chat.completions.create(model=SONNET, max_tokens=2048, stream=True,
                                            messages=[{"role": "user", "content": "Tell me a story"}])
    chunks = list(stream)
    assert "".join((c.choices[0].delta.content or "") for c in chunks if c.choices) == story
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 5  # really streamed
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert fake.last["body"] == {"model": UP_SONNET, "max_tokens": 2048, "stream": True,
                                 "messages": [user("Tell me a story")]}


CACHED_SYSTEM = "You are an expert Python developer with deep knowledge of best practices."
CACHE_EXAMPLES = [
    # Prompt caching: a cached system prompt.
    ([{"role": "system", "content": [{"type": "text", "text": CACHED_SYSTEM, "cache_control": {"type": "ephemeral"}}]},
      {"role": "user", "content": "Write a function to parse JSON"}],
     [{"type": "text", "text": CACHED_SYSTEM, "cache_control": {"type": "ephemeral"}}],
     [user("Write a function to parse JSON")]),
    # Use case: role definitions (multi-line system text).
    ([{"role": "system", "content": [{"type": "text", "text": "You are an expert software engineer specializing in "
                                      "Python.\nYour responses should be:\n- Clear and concise\n- Include code examples"
                                      "\n- Follow PEP 8 style guidelines\n- Include error handling",
                                      "cache_control": {"type": "ephemeral"}}]},
      {"role": "user", "content": "How do I read a CSV file?"}],
     [{"type": "text", "text": "You are an expert software engineer specializing in Python.\nYour responses should "
       "be:\n- Clear and concise\n- Include code examples\n- Follow PEP 8 style guidelines\n- Include error handling",
       "cache_control": {"type": "ephemeral"}}],
     [user("How do I read a CSV file?")]),
    # Use case: documents in the user turn (cached part, then the question).
    ([{"role": "user", "content": [
        {"type": "text", "text": "Here is our API documentation:\n\n[Large documentation content here...]",
         "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "How do I authenticate with the API?"}]}],
     None,
     [{"role": "user", "content": [
         {"type": "text", "text": "Here is our API documentation:\n\n[Large documentation content here...]",
          "cache_control": {"type": "ephemeral"}},
         {"type": "text", "text": "How do I authenticate with the API?"}]}]),
    # Use case: conversation history with a breakpoint in the middle.
    ([{"role": "user", "content": "What is Python?"},
      {"role": "assistant", "content": "Python is a high-level programming language..."},
      {"role": "user", "content": [{"type": "text", "text": "What are its main features?",
                                    "cache_control": {"type": "ephemeral"}}]},
      {"role": "assistant", "content": "Pythons main features include..."},
      {"role": "user", "content": "Can you give me a code example?"}],
     None,
     [user("What is Python?"),
      {"role": "assistant", "content": [{"type": "text", "text": "Python is a high-level programming language..."}]},
      {"role": "user", "content": [{"type": "text", "text": "What are its main features?",
                                    "cache_control": {"type": "ephemeral"}}]},
      {"role": "assistant", "content": [{"type": "text", "text": "Pythons main features include..."}]},
      user("Can you give me a code example?")]),
    # Use case: RAG (plain system string, cached retrieved context).
    ([{"role": "system", "content": "You are a helpful assistant that answers based on provided context."},
      {"role": "user", "content": [
          {"type": "text", "text": "Context:\n[Retrieved document content here...]",
           "cache_control": {"type": "ephemeral"}},
          {"type": "text", "text": "Question: What is the main topic of these documents?"}]}],
     [{"type": "text", "text": "You are a helpful assistant that answers based on provided context."}],
     [{"role": "user", "content": [
         {"type": "text", "text": "Context:\n[Retrieved document content here...]",
          "cache_control": {"type": "ephemeral"}},
         {"type": "text", "text": "Question: What is the main topic of these documents?"}]}]),
]


@pytest.mark.parametrize("messages,system,expected", CACHE_EXAMPLES,
                         ids=["system", "role-definition", "documents", "history", "rag"])
def test_seed_prompt_caching_curls(gateway, key, fake, messages, system, expected):
    fake.push(text("Sure.", usage={"input_tokens": 20, "output_tokens": 5, "cache_creation_input_tokens": 1500}))
    status, body = curl(gateway, key, {"model": SONNET, "messages": messages, "max_tokens": 1024})
    assert status == 200, body
    want = {"model": UP_SONNET, "max_tokens": 1024, "messages": expected}
    if system is not None:
        want["system"] = system
    assert fake.last["body"] == want
    assert body["usage"]["prompt_tokens"] == 1520
    assert body["usage"]["prompt_tokens_details"]["cache_write_tokens"] == 1500


def test_seed_cache_ttl_1h_kept(client, fake):
    client.chat.completions.create(model=SONNET, max_tokens=64, messages=[
        {"role": "system", "content": [{"type": "text", "text": "Long lived.",
                                        "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
        {"role": "user", "content": "hi"}])
    assert fake.last["body"]["system"] == [{"type": "text", "text": "Long lived.",
                                            "cache_control": {"type": "ephemeral", "ttl": "1h"}}]


def test_seed_extended_thinking_curl(gateway, key, fake):
    fake.push(Reply(blocks=[{**THINKING, "thinking": "Token buckets per shard..."},
                            {"type": "text", "text": "Use sharded token buckets."}]))
    status, body = curl(gateway, key, {
        "model": OPUS, "messages": [{"role": "user", "content": "Design a distributed rate limiting system for 1M "
                                     "requests/second"}],
        "thinking": {"type": "enabled", "budget_tokens": 8000}, "max_tokens": 2048})
    assert status == 200, body
    # max_tokens (2048) <= budget: the client's number is kept as visible-output room on top of the budget.
    assert fake.last["body"] == {"model": UP_OPUS, "max_tokens": 10048,
                                 "thinking": {"type": "enabled", "budget_tokens": 8000},
                                 "messages": [user("Design a distributed rate limiting system for 1M requests/second")]}
    msg = body["choices"][0]["message"]
    assert msg["content"] == "Use sharded token buckets."
    assert msg["reasoning"] == msg["reasoning_content"] == "Token buckets per shard..."
    assert msg["reasoning_signature"] == SIG
    assert msg["thinking_blocks"] == [{"type": "thinking", "thinking": "Token buckets per shard...", "signature": SIG}]


def test_seed_reasoning_continuation(client, fake):
    """The guide's JS snippet, in Python: reasoning, signature and redacted reasoning sent back as parts."""
    fake.push(Reply(blocks=[THINKING, REDACTED, {"type": "text", "text": "A token bucket per user."}]),
              text("Shard the buckets by user id."))
    messages: list[dict] = [{"role": "user", "content": "Design a rate limiting system"}]
    response = client.chat.completions.create(model=OPUS, messages=messages, max_tokens=2048,
                                              extra_body={"thinking": {"type": "enabled", "budget_tokens": 8000}})
    msg = response.choices[0].message
    extra = msg.model_extra
    parts = []
    if extra.get("reasoning"):
        parts.append({"type": "reasoning", "reasoning": extra["reasoning"], "signature": extra["reasoning_signature"]})
    if extra.get("redacted_reasoning"):
        parts.append({"type": "redacted_reasoning", "data": extra["redacted_reasoning"]})
    if msg.content:
        parts.append({"type": "text", "text": msg.content})
    messages.append({"role": "assistant", "content": parts})
    messages.append({"role": "user", "content": "How would you handle 10M req/s?"})
    follow = client.chat.completions.create(model=OPUS, messages=messages, max_tokens=2048,
                                            extra_body={"thinking": {"type": "enabled", "budget_tokens": 8000}})
    assert follow.choices[0].message.content == "Shard the buckets by user id."
    up = fake.last["body"]
    assert up["messages"][1] == {"role": "assistant", "content": [
        THINKING, REDACTED, {"type": "text", "text": "A token bucket per user."}]}
    assert SIG.replace("/", "\\/") in fake.last["raw"].decode() or SIG in fake.last["raw"].decode()
    assert up["thinking"] == {"type": "enabled", "budget_tokens": 8000}


def test_seed_thinking_with_cached_system_and_default_max_tokens(client, fake):
    client.chat.completions.create(model=OPUS, extra_body={"thinking": {"type": "enabled", "budget_tokens": 8000}},
                                   messages=[{"role": "system", "content": [
                                       {"type": "text", "text": "You are a system architect...",
                                        "cache_control": {"type": "ephemeral"}}]},
                                       {"role": "user", "content": "Design a notification system"}])
    # No max_tokens: the model's default (4096) becomes visible room on top of the 8000 budget.
    assert fake.last["body"] == {
        "model": UP_OPUS, "max_tokens": 12096, "thinking": {"type": "enabled", "budget_tokens": 8000},
        "system": [{"type": "text", "text": "You are a system architect...", "cache_control": {"type": "ephemeral"}}],
        "messages": [user("Design a notification system")]}


PIXEL = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


@pytest.mark.parametrize("url,source", [
    ("https://example.com/image.jpg", {"type": "url", "url": "https://example.com/image.jpg"}),
    (f"data:image/jpeg;base64,{PIXEL}", {"type": "base64", "media_type": "image/jpeg", "data": PIXEL}),
], ids=["url", "base64"])
def test_seed_vision(client, fake, url, source):
    client.chat.completions.create(model=SONNET, messages=[{"role": "user", "content": [
        {"type": "text", "text": "What's in this image?"}, {"type": "image_url", "image_url": {"url": url}}]}])
    assert fake.last["body"] == {"model": UP_SONNET, "max_tokens": 4096, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What's in this image?"}, {"type": "image", "source": source}]}]}


def test_seed_pdf_document(client, fake):
    client.chat.completions.create(model=OPUS, max_tokens=2048, messages=[{"role": "user", "content": [
        {"type": "text", "text": "Summarize this document"},
        {"type": "document", "document": {"type": "pdf", "url": "https://example.com/document.pdf"}}]}])
    assert fake.last["body"]["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "Summarize this document"},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/document.pdf"}}]}]


def test_pdf_as_file_part(client, fake):
    pdf = base64.b64encode(b"%PDF-1.4 tiny").decode()
    client.chat.completions.create(model=SONNET, max_tokens=64, messages=[{"role": "user", "content": [
        {"type": "file", "file": {"filename": "a.pdf", "file_data": f"data:application/pdf;base64,{pdf}"}},
        {"type": "text", "text": "Summarize"}]}])
    assert fake.last["body"]["messages"][0]["content"][0] == {
        "type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}}


def test_seed_tool_use(client, fake):
    fake.push(tool_use("get_weather", {"location": "Tokyo"}))
    r = client.chat.completions.create(model=SONNET, tools=[WEATHER_TOOL],
                                       messages=[{"role": "user", "content": "What's the weather in Tokyo?"}])
    assert fake.last["body"] == {"model": UP_SONNET, "max_tokens": 4096, "tools": [ANTHROPIC_WEATHER],
                                 "messages": [user("What's the weather in Tokyo?")]}
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("toolu_")
    assert orjson.loads(call.function.arguments) == {"location": "Tokyo"}


def test_seed_fallbacks_extension_not_forwarded(client, fake):
    fake.push(error(529, "overloaded_error", "Overloaded"), text("from the fallback"))
    r = client.chat.completions.create(model=SONNET, messages=[{"role": "user", "content": "..."}],
                                       extra_body={"orq": {"fallbacks": [{"model": OPUS}]}})
    assert r.choices[0].message.content == "from the fallback"
    assert [q["body"]["model"] for q in fake.requests][-1] == UP_OPUS
    assert all("orq" not in q["body"] for q in fake.requests)


def test_seed_temperature_and_top_p_refused_before_upstream(client, fake):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=SONNET, temperature=0.5, top_p=0.9, messages=[
            {"role": "user", "content": "hi"}])
    assert e.value.body["param"] == "temperature" and fake.requests == []
    client.chat.completions.create(model=SONNET, temperature=0.5, stop=["END"], user="user-42",
                                   extra_body={"top_k": 40},
                                   messages=[{"role": "user", "content": "hi"}])
    up = fake.last["body"]
    assert (up["temperature"], up["top_k"], up["stop_sequences"], up["metadata"]) == (
        0.5, 40, ["END"], {"user_id": "user-42"})


def test_n_greater_than_one_refused(client, fake):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=SONNET, n=2, messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["param"] == "n" and e.value.body["type"] == "invalid_request_error"
    assert fake.requests == []


# ---------------------------------------------------------------- multi-turn tools + thinking


def _tool_loop_turn1(fake: FakeAnthropic) -> None:
    fake.push(Reply(blocks=[THINKING, {"type": "text", "text": "Checking."},
                            {"type": "tool_use", "id": "toolu_01WeatherCall", "name": "get_weather",
                             "input": {"location": "Tokyo"}}], stop_reason="tool_use"),
              text("It is sunny in Tokyo."))


def _assert_turn2(fake: FakeAnthropic) -> None:
    first, second = fake.requests[-2], fake.requests[-1]
    assert first["body"]["thinking"] == {"type": "enabled", "budget_tokens": 8192}  # EFFORT_BUDGET["medium"]
    assert second["body"]["messages"] == [
        user("What's the weather in Tokyo?"),
        {"role": "assistant", "content": [THINKING, {"type": "text", "text": "Checking."},
                                          {"type": "tool_use", "id": "toolu_01WeatherCall", "name": "get_weather",
                                           "input": {"location": "Tokyo"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01WeatherCall",
                                      "content": "sunny, 24C"}]}]
    assert second["body"]["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    # The signed block reaches the upstream byte for byte.
    assert orjson.dumps(THINKING) in second["raw"]


def test_tool_thinking_round_trip_non_streamed(client, fake):
    _tool_loop_turn1(fake)
    messages: list[dict] = [{"role": "user", "content": "What's the weather in Tokyo?"}]
    r = client.chat.completions.create(model=SONNET, messages=messages, tools=[WEATHER_TOOL], max_tokens=4096,
                                       reasoning_effort="medium")
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls" and msg.content == "Checking."
    assert msg.model_extra["thinking_blocks"] == [THINKING]
    # Replay exactly what the SDK returned (as an OpenAI client that keeps extra fields would).
    messages.append(msg.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": "sunny, 24C"})
    r2 = client.chat.completions.create(model=SONNET, messages=messages, tools=[WEATHER_TOOL], max_tokens=4096,
                                        reasoning_effort="medium")
    assert r2.choices[0].message.content == "It is sunny in Tokyo." and r2.choices[0].finish_reason == "stop"
    _assert_turn2(fake)


def test_tool_thinking_round_trip_streamed(client, fake):
    _tool_loop_turn1(fake)
    messages: list[dict] = [{"role": "user", "content": "What's the weather in Tokyo?"}]
    stream = client.chat.completions.create(model=SONNET, messages=messages, tools=[WEATHER_TOOL], max_tokens=4096,
                                            reasoning_effort="medium", stream=True,
                                            stream_options={"include_usage": True})
    content, reasoning, signature, calls, finish, usage = "", "", None, {}, None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        if not chunk.choices:
            continue
        d = chunk.choices[0].delta
        extra = d.model_extra or {}
        content += d.content or ""
        reasoning += extra.get("reasoning_content") or ""
        signature = extra.get("reasoning_signature") or signature
        for tc in d.tool_calls or []:
            c = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            c["id"] = tc.id or c["id"]
            c["name"] = (tc.function.name if tc.function else None) or c["name"]
            c["arguments"] += (tc.function.arguments if tc.function else None) or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and content == "Checking."
    assert reasoning == THINKING["thinking"] and signature == SIG
    assert calls == {0: {"id": "toolu_01WeatherCall", "name": "get_weather", "arguments": '{"location":"Tokyo"}'}}
    assert usage.prompt_tokens == 12 and usage.completion_tokens == 9
    # The router convention: reasoning content part with its signature.
    messages.append({"role": "assistant", "content": [
        {"type": "reasoning", "reasoning": reasoning, "signature": signature}, {"type": "text", "text": content}],
        "tool_calls": [{"id": c["id"], "type": "function", "function": {"name": c["name"],
                                                                        "arguments": c["arguments"]}}
                       for c in calls.values()]})
    messages.append({"role": "tool", "tool_call_id": calls[0]["id"], "content": "sunny, 24C"})
    stream = client.chat.completions.create(model=SONNET, messages=messages, tools=[WEATHER_TOOL], max_tokens=4096,
                                            reasoning_effort="medium", stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "It is sunny in Tokyo."
    _assert_turn2(fake)


def test_stream_tool_arguments_arrive_as_fragments(client, fake):
    args = {"location": "San Francisco, California, United States of America"}
    fake.push(tool_use("get_weather", args))
    with client.chat.completions.stream(model=SONNET, tools=[WEATHER_TOOL],
                                        messages=[{"role": "user", "content": "weather?"}]) as s:
        fragments = [e for e in s if e.type == "tool_calls.function.arguments.delta"]
        final = s.get_final_completion()
    assert len(fragments) > 3
    assert orjson.loads(final.choices[0].message.tool_calls[0].function.arguments) == args


# ---------------------------------------------------------------- errors


def _error_shape(e: openai.APIStatusError) -> dict:
    body = e.response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


def test_401_bad_key(gateway, fake):
    c = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-ant-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        c.chat.completions.create(model=SONNET, messages=[{"role": "user", "content": "hi"}])
    err = _error_shape(e.value)
    assert err["code"] == "invalid_api_key" and e.value.response.headers["x-should-retry"] == "false"
    assert fake.requests == []


def test_403_disabled_key(gateway, fake):
    k = gateway.create_key("disabled-chat", status="disabled")
    c = openai.OpenAI(base_url=gateway.url + "/v1", api_key=k, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as e:
        c.chat.completions.create(model=SONNET, messages=[{"role": "user", "content": "hi"}])
    assert _error_shape(e.value)["type"] == "permission_error"


def test_403_model_not_allowed(gateway, fake):
    k = gateway.create_key("haiku-only", allowed_models=["claude-haiku-4.5"])
    c = openai.OpenAI(base_url=gateway.url + "/v1", api_key=k, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        c.chat.completions.create(model=SONNET, messages=[{"role": "user", "content": "hi"}])
    assert fake.requests == []


def test_404_unknown_model(client, fake):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="anthropic/claude-nonexistent-9", messages=[{"role": "user", "content": "x"}])
    assert "claude-nonexistent-9" in _error_shape(e.value)["message"]


def test_400_names_the_param(client, fake):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=SONNET, messages=[{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}])
    err = _error_shape(e.value)
    assert err["type"] == "invalid_request_error" and err["param"] == "messages[0].content[0]"
    assert e.value.response.headers["x-should-retry"] == "false"


def test_429_budget_exhausted_is_insufficient_quota(gateway, fake):
    k, _ = new_key(gateway, budget_micros=1)
    c = openai.OpenAI(base_url=gateway.url + "/v1", api_key=k, max_retries=0)
    with pytest.raises(openai.RateLimitError) as e:
        c.chat.completions.create(model=SONNET, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    err = _error_shape(e.value)
    assert err["code"] == "insufficient_quota" and err["type"] == "insufficient_quota"
    assert e.value.response.headers["x-should-retry"] == "false"
    assert fake.requests == []


def test_upstream_529_overloaded(client, fake):
    fake.default = error(529, "overloaded_error", "Overloaded")
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model=SONNET, messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 529
    err = _error_shape(e.value)
    assert err["type"] == "server_error" and err["code"] == "overloaded" and err["message"] == "Overloaded"


def test_upstream_400_relayed(client, fake):
    fake.push(error(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"))
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=SONNET, messages=[{"role": "user", "content": "hi"}])
    assert _error_shape(e.value)["code"] == "context_length_exceeded"


@pytest.fixture(scope="module")
def small_body_gateway():
    fake = FakeAnthropic()
    fake.start()
    gw = Gateway(fake.url, env={"ORGATE_SERVER__MAX_BODY_BYTES": "4096"}).start()
    yield gw
    gw.stop()
    fake.stop()


def test_413_body_too_large(small_body_gateway):
    c = openai.OpenAI(base_url=small_body_gateway.url + "/v1", api_key=small_body_gateway.create_key(), max_retries=0)
    with pytest.raises(openai.APIStatusError) as e:
        c.chat.completions.create(model=SONNET, messages=[{"role": "user", "content": "x" * 10000}])
    assert e.value.status_code == 413
    assert _error_shape(e.value)["code"] == "request_too_large"


def test_mid_stream_error_raises_in_sdk(client, fake):
    fake.push(Reply(blocks=[{"type": "text", "text": "partial answer"}, {"type": "text", "text": "never sent"}],
                    mid_stream_error="overloaded_error"))
    got = ""
    with pytest.raises(openai.APIError) as e:
        for chunk in client.chat.completions.create(model=SONNET, stream=True,
                                                    messages=[{"role": "user", "content": "hi"}]):
            got += (chunk.choices[0].delta.content or "") if chunk.choices else ""
    assert got == "partial answer" and "Overloaded" in str(e.value)


def test_dropped_upstream_stream_raises(client, fake):
    fake.push(Reply(blocks=[{"type": "text", "text": "a fairly long answer that will be cut"}], drop_after_events=4))
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model=SONNET, stream=True, messages=[{"role": "user", "content": "hi"}]))


# ---------------------------------------------------------------- usage and metering

CACHE_USAGE = {"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 3000,
               "cache_creation_input_tokens": 500}


def test_usage_with_cache_tokens(client, fake):
    fake.push(text("cached", usage=CACHE_USAGE))
    u = client.chat.completions.create(model=SONNET, messages=[{"role": "user", "content": "hi"}]).usage
    assert u.prompt_tokens == 3600 and u.completion_tokens == 20 and u.total_tokens == 3620
    assert u.prompt_tokens_details.cached_tokens == 3000
    assert u.model_extra["cache_read_input_tokens"] == 3000 and u.model_extra["cache_creation_input_tokens"] == 500
    fake.push(text("cached", usage=CACHE_USAGE))
    chunks = list(client.chat.completions.create(model=SONNET, stream=True, stream_options={"include_usage": True},
                                                 messages=[{"role": "user", "content": "hi"}]))
    assert chunks[-1].choices == [] and chunks[-1].usage.model_dump() == u.model_dump()


def test_streamed_and_not_cost_the_same(gateway, fake):
    k, key_id = new_key(gateway)
    c = openai.OpenAI(base_url=gateway.url + "/v1", api_key=k, max_retries=0)
    body = {"model": SONNET, "max_tokens": 256, "messages": [{"role": "user", "content": "hi"}]}
    fake.push(text("same answer", usage=CACHE_USAGE), text("same answer", usage=CACHE_USAGE))
    c.chat.completions.create(**body)
    list(c.chat.completions.create(**body, stream=True))
    rows = gateway.ledger(2, key_id=key_id)
    assert [r["stream"] for r in rows] == [0, 1] or [bool(r["stream"]) for r in rows] == [False, True]
    assert {r["api"] for r in rows} == {"openai-chat"} and {r["status"] for r in rows} == {200}
    assert rows[0]["cost_micros"] == rows[1]["cost_micros"] > 0
    for r in rows:
        assert (r["input_tokens"], r["output_tokens"], r["cache_read_tokens"], r["cache_write_5m_tokens"]) == (
            100, 20, 3000, 500)
    # sonnet: 100*3 + 20*15 + 3000*0.3 + 500*3.75 = 300 + 300 + 900 + 1875 micros
    assert rows[0]["cost_micros"] == 3375
