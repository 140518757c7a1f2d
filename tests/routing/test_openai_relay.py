"""Non-Claude models on openai_compatible providers: /v1/chat/completions relayed, metered, routed."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.fakes.openai_fake import Chat
from tests.routing.conftest import Clouds
from tests.routing.test_conformance import MSG, oai, row

# local-llama: price input 0.5, output 1.5, cache_read 0.25 USD/Mtok; usage 20 prompt (4 cached), 8 completion
COST = 16 * 0.5 + 4 * 0.25 + 8 * 1.5


def test_non_streamed_relay_with_own_key_and_model(gw, key, clouds: Clouds):
    raw = oai(gw, key).chat.completions.with_raw_response.create(model="local-llama", messages=MSG, temperature=0.2)
    c = raw.parse()
    assert c.choices[0].message.content == "Hello from the OpenAI fake." and c.usage.prompt_tokens == 20
    sent = clouds.openai.requests[-1]
    assert sent["body"]["model"] == "llama3.1:8b" and sent["body"]["temperature"] == 0.2
    assert sent["headers"]["Authorization"] == "Bearer sk-openai-fake"
    r = row(gw, raw.headers["x-request-id"])
    assert (r["provider"], r["upstream_model"], r["public_model"]) == ("oai", "llama3.1:8b", "local-llama")
    assert (r["input_tokens"], r["cache_read_tokens"], r["output_tokens"]) == (16, 4, 8)
    assert r["cost_micros"] == COST and raw.headers["x-orgate-provider"] == "oai"


def test_streamed_relay_meters_usage_the_client_did_not_ask_for(gw, key, clouds: Clouds):
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                   json={"model": "local-llama", "messages": MSG, "stream": True}, timeout=10)
    assert r.status_code == 200
    assert clouds.openai.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    events = [e for e in r.text.split("\n\n") if e.strip()]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert all(c["choices"] for c in chunks)  # the usage-only chunk was held back
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "Hello from the OpenAI fake."
    row_ = row(gw, r.headers["x-request-id"])
    assert row_["output_tokens"] == 8 and row_["cost_micros"] == COST and row_["stream"]


def test_streamed_relay_with_include_usage_through_the_sdk(gw, key, clouds: Clouds):
    chunks = list(oai(gw, key).chat.completions.create(model="local-llama", messages=MSG, stream=True,
                                                       stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 8
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from the OpenAI fake."


def test_relay_falls_back_to_the_next_openai_deployment(gw, key, clouds: Clouds):
    clouds.openai.script.append(Chat(status=503, error_type="server_error", error_message="busy"))
    raw = oai(gw, key).chat.completions.with_raw_response.create(model="local-llama", messages=MSG)
    assert raw.parse().choices[0].message.content
    assert [q["body"]["model"] for q in clouds.openai.requests] == ["llama3.1:8b", "llama3.1:8b-instruct"]
    r = row(gw, raw.headers["x-request-id"])
    assert r["provider"] == "oai2" and r["attempts"] == 2 and "HTTP 503" in r["attempt_log"]


def test_relay_client_error_keeps_openai_shape(gw, key, clouds: Clouds):
    clouds.openai.script.append(Chat(status=400, error_message="max_tokens is too large"))
    with pytest.raises(openai.BadRequestError) as e:
        oai(gw, key).chat.completions.create(model="local-llama", messages=MSG, max_tokens=10**6)
    assert e.value.body["message"] == "max_tokens is too large" and len(clouds.openai.requests) == 1


def test_relay_mid_stream_drop_is_an_error_event(gw, key, clouds: Clouds):
    clouds.openai.script.append(Chat(drop_after_chunks=3))
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                   json={"model": "local-llama", "messages": MSG, "stream": True}, timeout=10)
    last = [e for e in r.text.split("\n\n") if e.strip()][-1]
    assert json.loads(last[6:])["error"]["type"] in ("server_error", "api_error", "timeout_error")
    assert len(clouds.openai.requests) == 1


def test_openai_model_refused_on_messages_and_responses(gw, key, clouds: Clouds):
    r = httpx.post(gw.url + "/v1/responses", headers={"authorization": f"Bearer {key}"},
                   json={"model": "local-llama", "input": "hi"}, timeout=10)
    assert r.status_code == 400 and "chat/completions" in r.json()["error"]["message"]
    assert not clouds.openai.requests


def _attempts(gw) -> dict[tuple[str, str], float]:
    """orgate_upstream_attempts_total by (provider, outcome), as /metrics shows it now."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(httpx.get(gw.url + "/metrics", timeout=10).text):
        for s in family.samples:
            if s.name == "orgate_upstream_attempts_total":
                out[(s.labels["provider"], s.labels["outcome"])] = s.value
    return out


def test_relay_attempts_are_counted_like_every_other_request(gw, key, clouds: Clouds):
    """The OpenAI relay's attempts reach the same metrics as a Claude request's (they used to be missing)."""
    before = _attempts(gw)
    clouds.openai.script.append(Chat(status=503, error_type="server_error", error_message="busy"))
    oai(gw, key).chat.completions.create(model="local-llama", messages=MSG)
    after = _attempts(gw)
    grew = {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)}
    assert grew == {("oai", "http_503"): 1.0, ("oai2", "ok"): 1.0}
