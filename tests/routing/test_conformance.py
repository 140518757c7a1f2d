"""The same Claude conformance suite on Anthropic, Bedrock and Vertex, through the anthropic and openai SDKs."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.gateway import Gateway
from tests.routing.conftest import CLAUDE, MODELS, Clouds, Spec

MSG = [{"role": "user", "content": "Hello"}]
TOOLS = [{"name": "get_weather", "description": "Weather for a place",
          "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}]
OAI_TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a place",
                                               "parameters": TOOLS[0]["input_schema"]}}]


def ant(gw: Gateway, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)


def oai(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def row(gw: Gateway, request_id: str) -> dict:
    return gw.ledger(1, request_id=request_id)[-1]


@pytest.mark.parametrize("provider", CLAUDE)
def test_text_non_streamed_anthropic_sdk(gw, key, clouds: Clouds, provider):
    clouds.push(provider, Spec(text="Bonjour."))
    raw = ant(gw, key).messages.with_raw_response.create(model=MODELS[provider], max_tokens=64, messages=MSG)
    m = raw.parse()
    assert m.content[0].text == "Bonjour." and m.stop_reason == "end_turn"
    assert raw.headers["x-orgate-provider"] == provider
    r = row(gw, raw.headers["x-request-id"])
    assert (r["provider"], r["public_model"], r["attempts"]) == (provider, "claude-sonnet-4.5", 1)
    assert r["input_tokens"] == 12 and r["output_tokens"] == 7 and r["cost_micros"] == (12 * 3 + 7 * 15)
    assert clouds.count(provider) == 1


@pytest.mark.parametrize("provider", CLAUDE)
def test_text_non_streamed_openai_sdk(gw, key, clouds: Clouds, provider):
    clouds.push(provider, Spec(text="Bonjour."))
    raw = oai(gw, key).chat.completions.with_raw_response.create(model=MODELS[provider], messages=MSG)
    c = raw.parse()
    assert c.choices[0].message.content == "Bonjour." and c.choices[0].finish_reason == "stop"
    assert c.usage.prompt_tokens == 12 and c.usage.completion_tokens == 7
    assert raw.headers["x-orgate-provider"] == provider
    assert row(gw, raw.headers["x-request-id"])["provider"] == provider


@pytest.mark.parametrize("provider", CLAUDE)
def test_streamed_anthropic_sdk(gw, key, clouds: Clouds, provider):
    clouds.push(provider, Spec(text="A streamed answer, in pieces."))
    with ant(gw, key).messages.stream(model=MODELS[provider], max_tokens=64, messages=MSG) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
        rid = s.response.headers["x-request-id"]
    assert text == "A streamed answer, in pieces." and final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 7
    r = row(gw, rid)
    assert r["stream"] and r["provider"] == provider and r["output_tokens"] == 7


@pytest.mark.parametrize("provider", CLAUDE)
def test_streamed_openai_sdk(gw, key, clouds: Clouds, provider):
    clouds.push(provider, Spec(text="A streamed answer, in pieces."))
    stream = oai(gw, key).chat.completions.create(model=MODELS[provider], messages=MSG, stream=True,
                                                  stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "A streamed answer, in pieces."
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7


@pytest.mark.parametrize("provider", CLAUDE)
def test_tools_both_sdks(gw, key, clouds: Clouds, provider):
    clouds.push(provider, Spec(kind="tool"), Spec(kind="tool"))
    m = ant(gw, key).messages.create(model=MODELS[provider], max_tokens=64, messages=MSG, tools=TOOLS)
    tool = next(b for b in m.content if b.type == "tool_use")
    assert m.stop_reason == "tool_use" and tool.name == "get_weather" and tool.input == {"location": "Paris"}
    assert clouds.bodies(provider)[-1]["tools"][0]["name"] == "get_weather"
    with oai(gw, key).chat.completions.create(model=MODELS[provider], messages=MSG, tools=OAI_TOOLS,
                                              stream=True) as stream:
        chunks = list(stream)
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function.name == "get_weather"
    assert "".join(tc.function.arguments or "" for tc in calls).replace(" ", "") == '{"location":"Paris"}'
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


@pytest.mark.parametrize("provider", CLAUDE)
def test_thinking_signature_round_trip(gw, key, clouds: Clouds, provider):
    sig = "EqQBCkYIARgCKkD+sig/with+base64==" + provider
    clouds.push(provider, Spec(kind="thinking", signature=sig, thinking="Think, then answer."), Spec(text="Again."))
    c = ant(gw, key)
    thinking = {"type": "enabled", "budget_tokens": 1024}
    with c.messages.stream(model=MODELS[provider], max_tokens=2048, messages=MSG, thinking=thinking) as s:
        first = s.get_final_message()
    block = first.content[0]
    assert block.type == "thinking" and block.signature == sig and block.thinking == "Think, then answer."
    history = [*MSG, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
               {"role": "user", "content": "And then?"}]
    c.messages.create(model=MODELS[provider], max_tokens=2048, messages=history, thinking=thinking)
    sent = clouds.bodies(provider)[-1]["messages"][1]["content"][0]
    assert sent == {"type": "thinking", "thinking": "Think, then answer.", "signature": sig}


@pytest.mark.parametrize("provider", CLAUDE)
def test_thinking_through_openai_sdk(gw, key, clouds: Clouds, provider):
    clouds.push(provider, Spec(kind="thinking", signature="sig-" + provider))
    raw = oai(gw, key).chat.completions.with_raw_response.create(
        model=MODELS[provider], messages=MSG, extra_body={"thinking": {"type": "enabled", "budget_tokens": 1024}},
        max_tokens=2048)
    msg = raw.parse().choices[0].message
    assert msg.content == "Hello from the fake."
    assert msg.model_extra["thinking_blocks"][0]["signature"] == "sig-" + provider


def test_cache_usage_priced_the_same_on_every_provider(gw, key, clouds: Clouds):
    usage = {"input_tokens": 10, "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 30000,
             "output_tokens": 50}
    costs = {}
    for provider in CLAUDE:
        clouds.push(provider, Spec(usage=usage))
        raw = ant(gw, key).messages.with_raw_response.create(model=MODELS[provider], max_tokens=64, messages=MSG)
        assert raw.parse().usage.cache_read_input_tokens == 30000
        r = row(gw, raw.headers["x-request-id"])
        assert (r["cache_read_tokens"], r["cache_write_5m_tokens"]) == (30000, 2000)
        costs[provider] = r["cost_micros"]
    # 10*3 + 2000*3.75 + 30000*0.30 + 50*15 micro-USD
    assert set(costs.values()) == {10 * 3 + 7500 + 9000 + 750}


@pytest.mark.parametrize("provider", CLAUDE)
def test_invalid_request_is_relayed_in_each_dialect(gw, key, clouds: Clouds, provider):
    clouds.push(provider, Spec(kind="invalid"), Spec(kind="invalid"))
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(gw, key).messages.create(model=MODELS[provider], max_tokens=64, messages=MSG)
    assert e.value.body["error"]["type"] == "invalid_request_error"
    assert "scripted invalid request" in e.value.body["error"]["message"]
    with pytest.raises(openai.BadRequestError) as o:
        oai(gw, key).chat.completions.create(model=MODELS[provider], messages=MSG)
    assert "scripted invalid request" in o.value.message
    assert clouds.count(provider) == 2  # a client error is not retried


@pytest.mark.parametrize("provider", CLAUDE)
def test_mid_stream_failure_is_a_clean_error_event(gw, key, clouds: Clouds, provider):
    clouds.push(provider, Spec(kind="midstream"), Spec(kind="midstream"))
    with pytest.raises(anthropic.APIStatusError):
        with ant(gw, key).messages.stream(model=MODELS[provider], max_tokens=64, messages=MSG) as s:
            s.get_final_message()
    with pytest.raises(openai.APIError):
        list(oai(gw, key).chat.completions.create(model=MODELS[provider], messages=MSG, stream=True))
    assert clouds.count(provider) == 2  # content had reached the client: never retried


def test_models_listed_with_providers_for_both_sdks(gw, key):
    models = {m.id: m for m in ant(gw, key).models.list(limit=1000)}
    assert "claude-multi" in models and "local-llama" in models
    listed = {m.id: m for m in oai(gw, key).models.list()}
    multi = listed["claude-multi"].model_extra
    assert multi["providers"] == ["anthropic", "bedrock", "vertex"]
    assert "capabilities" in multi
    assert ant(gw, key).models.retrieve("claude-multi").display_name
