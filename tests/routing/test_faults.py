"""A provider that fails before the first byte is invisible to the client; one that fails after it is a clean error."""

from __future__ import annotations

import json
import time

import anthropic
import httpx
import pytest

from tests.routing.conftest import MODELS, Clouds, Spec
from tests.routing.test_conformance import MSG, ant, oai, row


@pytest.mark.parametrize("fault", ["overloaded", "throttled", "slow", "drop"])
@pytest.mark.parametrize("stream", [False, True])
def test_fault_on_first_deployment_falls_back_to_the_next(gw, key, clouds: Clouds, fault, stream):
    # claude-multi: bedrock, then vertex, then anthropic.
    clouds.push("bedrock", Spec(kind=fault, delay=2.5))
    clouds.push("vertex", Spec(text="Served by the fallback."))
    started = time.monotonic()
    raw = ant(gw, key).messages.with_raw_response.create(model="claude-multi", max_tokens=64, messages=MSG,
                                                         stream=stream)
    if stream:
        text = "".join(e.delta.text for e in raw.parse() if e.type == "content_block_delta")
    else:
        text = raw.parse().content[0].text
    assert text == "Served by the fallback."
    assert raw.headers["x-orgate-provider"] == "vertex"
    assert time.monotonic() - started < 2.5  # a retry-after of 1 s applies to bedrock, not to the fallback
    r = row(gw, raw.headers["x-request-id"])
    assert r["provider"] == "vertex" and r["attempts"] == 2 and r["status"] == 200
    log = json.loads(r["attempt_log"])
    assert [e["provider"] for e in log] == ["bedrock"]
    expected = {"overloaded": "HTTP 529", "throttled": "HTTP 429", "slow": "timed out", "drop": "upstream"}[fault]
    assert expected in log[0]["outcome"]


def test_stream_error_before_content_falls_back(gw, key, clouds: Clouds):
    clouds.push("bedrock", Spec(kind="precontent"))
    clouds.push("vertex", Spec(text="Clean answer."))
    with ant(gw, key).messages.stream(model="claude-multi", max_tokens=64, messages=MSG) as s:
        assert s.get_final_message().content[0].text == "Clean answer."
        r = row(gw, s.response.headers["x-request-id"])
    assert r["attempts"] == 2 and "stream failed before content" in r["attempt_log"]


def test_every_deployment_failing_returns_the_last_error(gw, key, clouds: Clouds):
    clouds.push("bedrock", Spec(kind="overloaded"))
    clouds.push("vertex", Spec(kind="overloaded"))
    clouds.push("anthropic", Spec(kind="overloaded"))
    with pytest.raises(anthropic.APIStatusError) as e:
        ant(gw, key).messages.create(model="claude-multi", max_tokens=64, messages=MSG)
    assert e.value.status_code == 529 and e.value.body["error"]["type"] == "overloaded_error"
    rid = e.value.response.headers["x-request-id"]
    r = row(gw, rid)
    assert r["attempts"] == 3 and [x["provider"] for x in json.loads(r["attempt_log"])] == ["bedrock", "vertex", "anthropic"]


def test_retry_after_is_honoured_on_a_single_deployment(gw, key, clouds: Clouds):
    clouds.push("vertex", Spec(kind="throttled", retry_after="1"), Spec(text="After waiting."))
    started = time.monotonic()
    m = ant(gw, key).messages.create(model=MODELS["vertex"], max_tokens=64, messages=MSG)
    assert m.content[0].text == "After waiting." and time.monotonic() - started >= 1.0
    assert clouds.count("vertex") == 2


def test_per_request_fallbacks_in_both_spellings(gw, key, clouds: Clouds):
    clouds.push("anthropic", Spec(kind="overloaded"), Spec(kind="overloaded"), Spec(kind="overloaded"))
    clouds.push("bedrock", Spec(text="From bedrock."))
    m = ant(gw, key).messages.create(model=MODELS["anthropic"], max_tokens=64, messages=MSG,
                                     extra_body={"fallbacks": [{"model": MODELS["bedrock"]}]})
    assert m.content[0].text == "From bedrock."
    assert "fallbacks" not in clouds.bodies("bedrock")[-1]
    clouds.reset()
    clouds.push("anthropic", Spec(kind="overloaded"), Spec(kind="overloaded"), Spec(kind="overloaded"))
    clouds.push("vertex", Spec(text="From vertex."))
    c = oai(gw, key).chat.completions.create(model=MODELS["anthropic"], messages=MSG,
                                             extra_body={"orq": {"fallbacks": [{"model": MODELS["vertex"]}]}})
    assert c.choices[0].message.content == "From vertex."
    assert "orq" not in clouds.bodies("vertex")[-1]


@pytest.mark.parametrize("provider", ["bedrock", "vertex"])
def test_connection_dropped_mid_stream_ends_with_error_event(gw, key, clouds: Clouds, provider):
    from tests.fakes.bedrock_fake import Reply, text_message

    fake = clouds.bedrock if provider == "bedrock" else clouds.vertex
    fake.script.append(Reply(message=text_message("a fairly long answer that will be cut short"), drop_after_events=5))
    started = time.monotonic()
    r = httpx.post(gw.url + "/v1/messages", headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                   json={"model": MODELS[provider], "max_tokens": 64, "stream": True, "messages": MSG}, timeout=10)
    assert r.status_code == 200 and time.monotonic() - started < 5
    assert "event: content_block_delta" in r.text
    assert r.text.rstrip().split("\n\n")[-1].startswith("event: error")
    assert "event: message_stop" not in r.text
    assert clouds.count(provider) == 1


def test_signature_rejected_after_fallback_is_retried_without_prior_thinking(gw, key, clouds: Clouds):
    from tests.fakes.bedrock_fake import Reply

    clouds.push("bedrock", Spec(kind="overloaded"))
    clouds.vertex.script.append(Reply(anthropic_error="invalid_request_error",
                                      error_message="messages.1.content.0: Invalid `signature` in `thinking` block"))
    clouds.push("vertex", Spec(text="Recovered."))
    history = [*MSG, {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "sig-from-elsewhere"}, {"type": "text", "text": "Hi"}]},
        {"role": "user", "content": "More"}]
    raw = ant(gw, key).messages.with_raw_response.create(
        model="claude-multi", max_tokens=2048, messages=history, thinking={"type": "enabled", "budget_tokens": 1024})
    assert raw.parse().content[0].text == "Recovered."
    first, second = clouds.bodies("vertex")[-2:]
    assert first["messages"][1]["content"][0]["type"] == "thinking"
    assert second["messages"][1]["content"] == [{"type": "text", "text": "Hi"}]
    assert second["thinking"] == {"type": "enabled", "budget_tokens": 1024}  # not in a tool loop: kept
    r = row(gw, raw.headers["x-request-id"])
    assert "signature" in r["attempt_log"]
