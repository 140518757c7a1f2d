"""Claude Opus 5.5 on Bedrock's Messages API through a real orgate process, with the official SDKs as clients.

Two Bedrock fakes (tests/fakes/bedrock_fake.py) stand for bedrock-runtime and bedrock-mantle; each recomputes
the SigV4 signature with botocore for its own service (`bedrock` / `bedrock-mantle`) or checks the API key, and
checks the request is the Messages API's (first-party body with the Bedrock id, `anthropic-version` header,
betas in `anthropic-beta`). Every answer is metered to the micro-dollar in the ledger.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
import yaml
from anthropic._constants import ANTHROPIC_API_VERSION

from tests.clients.helpers import sdk_turn
from tests.fakes import anthropic_fake as af
from tests.fakes.bedrock_fake import BedrockFake, Reply
from tests.gateway import Gateway
from tests.paths import CLIENT_CAPTURES
from tests.routing.conftest import Threaded

AKID, SECRET = "AKIDFAKEEXAMPLE", "fake/secret/key"
API_KEY = "ABSK-fake-api-key"
OPUS_55_PRICE = {"input": "4", "output": "20", "cache_write_5m": "5", "cache_write_1h": "8", "cache_read": "0.20"}
USAGE = {"input_tokens": 100, "output_tokens": 50, "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 300,
         "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 100}}
# 100 x $4 + 50 x $20 + 1000 x $0.20 + 200 x $5 + 100 x $8 per million tokens, in micro-dollars
COST = 100 * 4 + 50 * 20 + 1000 * 0.20 + 200 * 5 + 100 * 8
MSG = [{"role": "user", "content": "Hi"}]


class Fakes:
    def __init__(self) -> None:
        self.runtime = BedrockFake(keys={AKID: (SECRET, None)}, bearer_tokens={API_KEY})
        self.mantle = BedrockFake(keys={AKID: (SECRET, None)}, bearer_tokens={API_KEY}, service="bedrock-mantle")
        self.threads = [Threaded(self.runtime), Threaded(self.mantle)]

    def reply(self, fake: BedrockFake, text: str, **kw: Any) -> None:
        message = {"id": "msg_bdrk_0123456789", "type": "message", "role": "assistant", "model": "x",
                   "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                   "usage": dict(USAGE)}
        fake.script.append(Reply(message=message, **kw))


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    f = Fakes()
    yield f
    for t in f.threads:
        t.stop()


@pytest.fixture(scope="module")
def gw(fakes: Fakes, fake_session: af.FakeAnthropic) -> Iterator[Gateway]:
    gw = Gateway(fake_session.url)
    sig = {"aws_access_key_id": AKID, "aws_secret_access_key": SECRET}
    quick = {"first_byte": 5.0, "idle": 5.0}
    providers = {
        "aws": {"type": "bedrock", "region": "us-east-1", "base_url": fakes.runtime.url,
                "mantle_base_url": fakes.mantle.url, "timeouts": quick, **sig},
        "aws-key": {"type": "bedrock", "region": "us-east-1", "base_url": fakes.runtime.url,
                    "mantle_base_url": fakes.mantle.url, "bearer_token": API_KEY, "timeouts": quick},
        "mantle": {"type": "bedrock", "region": "us-east-1", "base_url": fakes.mantle.url, "messages_endpoint": "mantle",
                   "timeouts": quick, **sig},
    }
    models = {
        "opus-runtime": {"deployments": [{"provider": "aws", "model": "us.anthropic.claude-opus-5-5"}], "price": OPUS_55_PRICE},
        "opus-key": {"deployments": [{"provider": "aws-key", "model": "global.anthropic.claude-opus-5-5"}], "price": OPUS_55_PRICE},
        "opus-mantle": {"deployments": [{"provider": "mantle", "model": "anthropic.claude-opus-5-5"}], "price": OPUS_55_PRICE},
        # Claude Code 2.1.332's default model, deployed on Bedrock (the catalog entry keeps its price)
        "claude-opus-5.5": {"deployments": [{"provider": "aws", "model": "us.anthropic.claude-opus-5-5"}]},
        "sonnet-legacy": {"deployments": [{"provider": "aws", "model": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}],
                          "price": OPUS_55_PRICE},
    }
    path = Path(gw.data_dir) / "orgate.yaml"
    path.write_text(yaml.safe_dump({"routing": {"max_attempts": 1}, "providers": providers, "models": models}))
    gw.env["ORGATE_CONFIG"] = str(path)
    gw.start()
    yield gw
    gw.stop()


def _row(gw: Gateway, name: str) -> dict[str, Any]:
    kid = gw.query("SELECT id FROM keys WHERE name = :n", n=name)[0]["id"]
    (row,) = gw.ledger(1, key_id=kid)
    return row


def _metered(row: dict[str, Any], provider: str) -> None:
    assert row["provider"] == provider and row["status"] == 200
    assert (row["input_tokens"], row["output_tokens"], row["cache_read_tokens"], row["cache_write_5m_tokens"],
            row["cache_write_1h_tokens"]) == (100, 50, 1000, 200, 100)
    assert row["cost_micros"] == COST


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("model,provider,fake", [("opus-runtime", "aws", "runtime"), ("opus-key", "aws-key", "runtime"),
                                                 ("opus-mantle", "mantle", "mantle")])
def test_anthropic_sdk(gw: Gateway, fakes: Fakes, model: str, provider: str, fake: str, stream: bool) -> None:
    up: BedrockFake = getattr(fakes, fake)
    name = f"sdk-{model}-{stream}"
    key = gw.create_key(name)
    fakes.reply(up, f"Hello from {model}.")
    client = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
    text, final = sdk_turn(client, stream, model=model, max_tokens=64, messages=MSG)
    assert text == f"Hello from {model}."
    assert final.usage.cache_read_input_tokens == 1000 and final.usage.output_tokens == 50
    rec = up.requests[-1]
    # the client's own API version, relayed (the SDK sends its default; the Messages-API models take it)
    assert rec.raw_path == "/anthropic/v1/messages" and rec.headers["anthropic-version"] == ANTHROPIC_API_VERSION
    assert rec.json["model"] == {"opus-runtime": "us.anthropic.claude-opus-5-5", "opus-key": "global.anthropic.claude-opus-5-5",
                                 "opus-mantle": "anthropic.claude-opus-5-5"}[model]
    assert bool(rec.json.get("stream")) is stream
    auth = rec.headers["Authorization"]
    if provider == "aws-key":
        assert auth == f"Bearer {API_KEY}"
    else:
        assert f"/us-east-1/{up.service}/aws4_request" in auth
    _metered(_row(gw, name), provider)


def _openai(gw: Gateway, fakes: Fakes, name: str, text: str) -> openai.OpenAI:
    """An openai SDK client on its own key, with the runtime fake's next answer scripted."""
    fakes.reply(fakes.runtime, text)
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.create_key(name), max_retries=0)


def _served_on_runtime(gw: Gateway, fakes: Fakes, name: str) -> Any:
    """The request the runtime fake got on the Messages API for opus-runtime; its ledger row is exact."""
    rec = fakes.runtime.requests[-1]
    assert rec.raw_path == "/anthropic/v1/messages" and rec.json["model"] == "us.anthropic.claude-opus-5-5"
    _metered(_row(gw, name), "aws")
    return rec


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_openai_sdk_chat(gw: Gateway, fakes: Fakes, stream: bool) -> None:
    client = _openai(gw, fakes, f"chat-{stream}", "Hello from chat.")
    if stream:
        chunks = list(client.chat.completions.create(model="opus-runtime", messages=MSG, stream=True,
                                                     stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        usage = [c.usage for c in chunks if c.usage][-1]
    else:
        r = client.chat.completions.create(model="opus-runtime", messages=MSG)
        text, usage = r.choices[0].message.content, r.usage
    assert text == "Hello from chat."
    assert usage.completion_tokens == 50 and usage.prompt_tokens == 100 + 1000 + 300
    rec = _served_on_runtime(gw, fakes, f"chat-{stream}")
    assert bool(rec.json.get("stream")) is stream and "anthropic_version" not in rec.json


def test_claude_code_default_model_by_its_catalog_id(gw: Gateway, fakes: Fakes) -> None:
    """`aws/anthropic/claude-opus-5-5`: the catalog's Bedrock id, on the Messages API (catalog bedrock_api)."""
    key = gw.create_key("catalog-id")
    fakes.reply(fakes.runtime, "Catalog.")
    client = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
    r = client.beta.messages.create(model="aws/anthropic/claude-opus-5-5", max_tokens=64, messages=MSG,
                                    betas=["claude-code-20250219", "prompt-caching-scope-2026-01-05"])
    assert r.content[0].text == "Catalog."
    rec = fakes.runtime.requests[-1]
    assert rec.raw_path == "/anthropic/v1/messages" and rec.json["model"] == "anthropic.claude-opus-5-5"
    assert rec.headers["anthropic-beta"] == "claude-code-20250219"  # Bedrock's table: the scope beta is not taken
    row = _row(gw, "catalog-id")
    assert row["provider"] == "aws" and row["cost_micros"] == COST


def test_legacy_model_keeps_invoke_model(gw: Gateway, fakes: Fakes) -> None:
    key = gw.create_key("legacy")
    fakes.reply(fakes.runtime, "Legacy.")
    client = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
    with client.messages.stream(model="sonnet-legacy", max_tokens=64, messages=MSG) as s:
        assert "".join(s.text_stream) == "Legacy."
    rec = fakes.runtime.requests[-1]
    assert rec.action == "invoke-with-response-stream" and rec.model == "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    _metered(_row(gw, "legacy"), "aws")


def test_count_tokens_on_mantle(gw: Gateway, fakes: Fakes) -> None:
    key = gw.create_key("count")
    fakes.mantle.script.append(Reply(input_tokens=777))
    client = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
    assert client.messages.count_tokens(model="opus-runtime", messages=MSG).input_tokens == 777
    rec = fakes.mantle.requests[-1]
    assert rec.raw_path == "/anthropic/v1/messages/count_tokens" and rec.json["model"] == "anthropic.claude-opus-5-5"


def test_errors_reach_each_dialect_in_its_own_shape(gw: Gateway, fakes: Fakes) -> None:
    key = gw.create_key("errors")
    fakes.runtime.script.append(Reply(error="ThrottlingException", error_message="Too many requests", headers={"Retry-After": "1"}))
    with pytest.raises(anthropic.RateLimitError) as e:
        anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0).messages.create(
            model="opus-runtime", max_tokens=64, messages=MSG)
    assert e.value.body["error"]["type"] == "rate_limit_error"
    fakes.runtime.script.append(Reply(anthropic_error="overloaded_error", error_message="Overloaded"))
    with pytest.raises(openai.APIStatusError) as oe:
        openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0).chat.completions.create(
            model="opus-runtime", messages=MSG)
    assert oe.value.status_code in (503, 529) and "error" in json.loads(oe.value.response.text)
    fakes.reply(fakes.runtime, "Half an answ", stream_exception="modelStreamErrorException", cut_after=4,
                error_message="stream broke")
    with pytest.raises(anthropic.APIStatusError):
        with anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0).messages.stream(
                model="opus-runtime", max_tokens=64, messages=MSG) as s:
            "".join(s.text_stream)


def test_claude_codes_captured_request(gw: Gateway, fakes: Fakes) -> None:
    """Claude Code's own request (captured, ../shared/spec/clients) for its default model, deployed on Bedrock:
    betas bridged, its JSON-string user_id hashed, everything else as sent; the answer streamed and metered."""
    captured = orjson.loads((CLIENT_CAPTURES / "claude_write.json").read_bytes())[0]
    key = gw.create_key("claude-code")
    headers = {k: v for k, v in captured["headers"].items()
               if k.startswith(("anthropic-", "x-claude-code", "x-stainless")) or k in ("user-agent", "x-app")}
    headers.update({"x-api-key": key, "content-type": "application/json"})
    fakes.reply(fakes.runtime, "Wrote it.")
    body = {**captured["body"], "model": "claude-opus-5-5"}
    r = httpx.post(gw.url + "/v1/messages?beta=true", content=orjson.dumps(body), headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == "Wrote it." and events[-1]["type"] == "message_stop"
    rec = fakes.runtime.requests[-1]
    assert rec.raw_path == "/anthropic/v1/messages" and rec.json["model"] == "us.anthropic.claude-opus-5-5"
    sent = rec.headers["anthropic-beta"].split(",")
    assert "claude-code-20250219" in sent and "tool-search-tool-2025-10-19" in sent
    assert "thinking-token-count-2026-05-13" not in sent and "advanced-tool-use-2025-11-20" not in sent
    uid = captured["body"]["metadata"]["user_id"]
    assert rec.json["metadata"] == {"user_id": hashlib.sha256(uid.encode()).hexdigest()}
    assert rec.json["messages"] == captured["body"]["messages"] and rec.json["tools"] == captured["body"]["tools"]
    _metered(_row(gw, "claude-code"), "aws")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_openai_sdk_responses(gw: Gateway, fakes: Fakes, stream: bool) -> None:
    client = _openai(gw, fakes, f"responses-{stream}", "Hello from responses.")
    if stream:
        events = list(client.responses.create(model="opus-runtime", input="Hi", stream=True))
        final = [e.response for e in events if e.type == "response.completed"][0]
    else:
        final = client.responses.create(model="opus-runtime", input="Hi")
    assert final.output_text == "Hello from responses." and final.usage.output_tokens == 50
    _served_on_runtime(gw, fakes, f"responses-{stream}")
