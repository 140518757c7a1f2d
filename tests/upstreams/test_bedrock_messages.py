"""BedrockUpstream on Bedrock's Messages API (/anthropic/v1/messages) against the Bedrock fake: real HTTP,
signatures recomputed by botocore for the host's service (`bedrock` on runtime, `bedrock-mantle` on mantle)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio

from orgate.config import Provider, RoutingSettings, load_settings
from orgate.core.target import Target
from orgate.errors import UpstreamError
from orgate.upstreams import http
from orgate.upstreams.base import UpstreamCall
from orgate.upstreams.bedrock import BedrockUpstream
from orgate.upstreams.bedrock_messages import base_model_id, messages_api_by_id
from orgate.upstreams.registry import build_upstreams
from tests.fakes.bedrock_fake import BedrockFake, Reply, message_events, text_message, thinking_message
from tests.upstreams import answered

AKID, SECRET = "AKIDFAKEEXAMPLE", "fake/secret/key"
API_KEY = "ABSK-fake-api-key"
OPUS = "us.anthropic.claude-opus-5-5"
BODY = {"model": "claude-opus-5-5", "max_tokens": 256, "messages": [{"role": "user", "content": "Hi"}]}


@pytest_asyncio.fixture
async def fakes() -> AsyncIterator[tuple[BedrockFake, BedrockFake]]:
    runtime = BedrockFake(keys={AKID: (SECRET, None)}, bearer_tokens={API_KEY})
    mantle = BedrockFake(keys={AKID: (SECRET, None)}, bearer_tokens={API_KEY}, service="bedrock-mantle")
    await runtime.start()
    await mantle.start()
    yield runtime, mantle
    await runtime.stop()
    await mantle.stop()
    await http.close_session()


def upstream(runtime: BedrockFake, mantle: BedrockFake, model_apis: dict[str, str] | None = None, **extra: Any) -> Any:
    creds: dict[str, Any] = {} if "bearer_token" in extra else {"aws_access_key_id": AKID, "aws_secret_access_key": SECRET}
    p = Provider(type="bedrock", region="us-east-1", base_url=runtime.url, mantle_base_url=mantle.url, **{**creds, **extra})
    return answered(BedrockUpstream("aws", p, RoutingSettings(), model_apis))


def call(stream: bool, model: str = OPUS, body: dict | None = None, beta: str | None = None, raw: bool = True) -> UpstreamCall:
    b = dict(body or BODY)
    if stream:
        b["stream"] = True
    data = orjson.dumps(b)
    return UpstreamCall(Target("aws", "bedrock", model), None if raw else b, stream, anthropic_beta=beta,
                        raw_body=data if raw else None, client_model=b["model"])


def sse(events: list[dict]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


@pytest.mark.asyncio
async def test_non_stream_signed_for_bedrock_with_the_clients_bytes(fakes) -> None:
    runtime, mantle = fakes
    runtime.script.append(Reply(message=text_message("Bonjour")))
    c = call(False, beta="context-1m-2025-08-07,interleaved-thinking-2025-05-14")
    resp = await upstream(runtime, mantle).messages(c)
    assert resp.status == 200, await resp.read()
    msg = json.loads(await resp.read())
    assert msg["content"] == [{"type": "text", "text": "Bonjour"}] and msg["model"] == OPUS
    assert resp.headers["content-type"] == "application/json" and resp.headers["request-id"]
    (rec,) = runtime.requests
    assert rec.raw_path == "/anthropic/v1/messages" and rec.action == "messages"
    # the client's bytes, only the model id swapped
    assert rec.body == c.raw_body.replace(b'"claude-opus-5-5"', b'"us.anthropic.claude-opus-5-5"')
    assert rec.headers["anthropic-version"] == "2023-06-01"
    assert rec.headers["anthropic-beta"] == "context-1m-2025-08-07,interleaved-thinking-2025-05-14"
    assert rec.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/")
    assert "/us-east-1/bedrock/aws4_request" in rec.headers["Authorization"]
    assert not mantle.requests


@pytest.mark.asyncio
async def test_stream_relayed_byte_for_byte(fakes) -> None:
    runtime, mantle = fakes
    sig = "EqQBCkYIARgCKkD+/abc==" + "x" * 300
    message = {**thinking_message("Think hard.", sig, "Answer."), "model": OPUS}
    message["usage"] = {"input_tokens": 100, "output_tokens": 50, "cache_read_input_tokens": 1000,
                        "cache_creation_input_tokens": 300,
                        "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 100}}
    runtime.script.append(Reply(message=message, write_size=7))
    resp = await upstream(runtime, mantle).messages(call(True))
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/event-stream")
    got = b"".join([c async for c in resp.iter_chunks()])
    assert got == sse(message_events(message))
    assert json.loads(runtime.requests[0].body)["stream"] is True


@pytest.mark.asyncio
async def test_bedrock_api_key_as_bearer(fakes) -> None:
    runtime, mantle = fakes
    resp = await upstream(runtime, mantle, bearer_token=API_KEY).messages(call(False))
    assert resp.status == 200, await resp.read()
    assert runtime.requests[0].headers["Authorization"] == f"Bearer {API_KEY}"


@pytest.mark.asyncio
async def test_mantle_endpoint_signs_for_bedrock_mantle_and_serves_every_model(fakes) -> None:
    runtime, mantle = fakes
    up = upstream(runtime, mantle, messages_endpoint="mantle")
    for model in ("anthropic.claude-opus-5-5", "anthropic.claude-sonnet-4-6-v1"):  # mantle has no InvokeModel
        resp = await up.messages(call(False, model=model))
        assert resp.status == 200, await resp.read()
    assert [r.model for r in mantle.requests] == ["anthropic.claude-opus-5-5", "anthropic.claude-sonnet-4-6-v1"]
    assert all("/us-east-1/bedrock-mantle/aws4_request" in r.headers["Authorization"] for r in mantle.requests)
    assert not runtime.requests


@pytest.mark.asyncio
async def test_a_mantle_base_url_selects_mantle(fakes) -> None:
    p = Provider(type="bedrock", region="eu-west-1", base_url="https://bedrock-mantle.eu-west-1.api.aws/anthropic", bearer_token="k")
    api = BedrockUpstream("m", p, RoutingSettings()).messages_api
    assert api.endpoint == "mantle" and api.mantle_url == "https://bedrock-mantle.eu-west-1.api.aws"
    assert api.mantle_auth.service == "bedrock-mantle"
    p = Provider(type="bedrock", region="eu-west-1", bearer_token="k")
    api = BedrockUpstream("r", p, RoutingSettings()).messages_api
    assert api.endpoint == "runtime" and api.runtime_url == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    assert api.mantle_url == "https://bedrock-mantle.eu-west-1.api.aws"
    # AWS's own spelling of the Messages API base URL: InvokeModel's paths still hang off the host
    p = Provider(type="bedrock", region="eu-west-1", base_url="https://bedrock-runtime.eu-west-1.amazonaws.com/anthropic", bearer_token="k")
    up = BedrockUpstream("r", p, RoutingSettings())
    assert up.messages_api.endpoint == "runtime" and up.messages_api.runtime_url == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    assert up.url("anthropic.claude-opus-4-6-v1", "invoke") == "https://bedrock-runtime.eu-west-1.amazonaws.com/model/anthropic.claude-opus-4-6-v1/invoke"


@pytest.mark.asyncio
async def test_legacy_models_keep_invoke_model(fakes) -> None:
    runtime, mantle = fakes
    up = upstream(runtime, mantle)
    resp = await up.messages(call(False, model="global.anthropic.claude-sonnet-4-5-20250929-v1:0"))
    assert resp.status == 200, await resp.read()
    resp = await up.messages(call(False, model="anthropic.claude-opus-4-6-v1"))
    assert resp.status == 200, await resp.read()
    assert [r.action for r in runtime.requests] == ["invoke", "invoke"]


@pytest.mark.asyncio
async def test_provider_api_and_catalog_field_override_the_id_rule(fakes) -> None:
    runtime, mantle = fakes
    await upstream(runtime, mantle, api="invoke").messages(call(False))
    await upstream(runtime, mantle, api="messages").messages(call(False, model="anthropic.claude-sonnet-4-6"))
    await upstream(runtime, mantle, {"anthropic.claude-opus-5-5": "invoke"}).messages(call(False))
    await upstream(runtime, mantle, {"anthropic.claude-sonnet-4-6": "messages"}).messages(call(False, model="eu.anthropic.claude-sonnet-4-6"))
    assert [r.action for r in runtime.requests] == ["invoke", "messages", "invoke", "messages"]


def test_the_id_rule() -> None:
    messages = ["anthropic.claude-opus-5-5", "us.anthropic.claude-opus-4-8", "global.anthropic.claude-fable-5-2",
                "anthropic.claude-opus-4-7", "arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.claude-sonnet-5"]
    invoke = ["anthropic.claude-opus-4-6-v1", "anthropic.claude-sonnet-4-6", "anthropic.claude-haiku-4-5-20251001-v1:0",
              "anthropic.claude-3-7-sonnet-20250219-v1:0", "arn:aws:bedrock:us-east-1:1:application-inference-profile/abc"]
    assert [m for m in messages if not messages_api_by_id(m)] == []
    assert [m for m in invoke if messages_api_by_id(m)] == []
    assert base_model_id("arn:aws:bedrock:us-east-1:1:inference-profile/eu.anthropic.claude-opus-5") == "anthropic.claude-opus-5"


@pytest.mark.asyncio
async def test_betas_bridged_into_the_header(fakes) -> None:
    runtime, mantle = fakes
    body = {**BODY, "speed": "fast", "tools": [{"name": "t", "input_schema": {"type": "object"}, "defer_loading": True}]}
    c = call(False, body=body, beta="fast-mode-2026-02-01,advanced-tool-use-2025-11-20,prompt-caching-scope-2026-01-05,claude-code-20250219")
    resp = await upstream(runtime, mantle).messages(c)
    assert resp.status == 200, await resp.read()
    rec = runtime.requests[0]
    assert rec.headers["anthropic-beta"] == "tool-search-tool-2025-10-19,claude-code-20250219"
    assert "speed" not in rec.json and rec.json["tools"][0]["defer_loading"] is True
    assert rec.json["model"] == OPUS and "anthropic_beta" not in rec.json


@pytest.mark.asyncio
async def test_count_tokens_on_mantle_with_the_base_id(fakes) -> None:
    runtime, mantle = fakes
    mantle.script.append(Reply(input_tokens=4321))
    c = UpstreamCall(Target("aws", "bedrock", OPUS), dict(BODY), False, anthropic_beta="context-1m-2025-08-07")
    resp = await upstream(runtime, mantle).count_tokens(c)
    assert resp.status == 200, await resp.read()
    assert json.loads(await resp.read()) == {"input_tokens": 4321}
    (rec,) = mantle.requests
    assert rec.raw_path == "/anthropic/v1/messages/count_tokens" and rec.model == "anthropic.claude-opus-5-5"
    assert "/bedrock-mantle/aws4_request" in rec.headers["Authorization"]
    assert rec.headers["anthropic-beta"] == "context-1m-2025-08-07"
    assert not runtime.requests


@pytest.mark.asyncio
async def test_errors_in_the_anthropic_shape(fakes) -> None:
    runtime, mantle = fakes
    up = upstream(runtime, mantle)
    runtime.script.append(Reply(anthropic_error="overloaded_error", error_message="Overloaded"))
    resp = await up.messages(call(False))
    assert resp.status == 529 and json.loads(await resp.read())["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    runtime.script.append(Reply(error="ThrottlingException", error_message="Too many requests", headers={"Retry-After": "2"}))
    resp = await up.messages(call(True))
    assert resp.status == 429 and resp.headers["retry-after"] == "2"
    assert json.loads(await resp.read())["error"] == {"type": "rate_limit_error", "message": "Too many requests"}
    bad = upstream(runtime, mantle, aws_secret_access_key="wrong")
    resp = await bad.messages(call(False))
    assert resp.status == 401 and json.loads(await resp.read())["error"]["type"] == "authentication_error"


@pytest.mark.asyncio
async def test_mid_stream_error_event_relayed(fakes) -> None:
    runtime, mantle = fakes
    runtime.script.append(Reply(message=text_message("Hello there, long answer."), stream_exception="modelStreamErrorException",
                                cut_after=4, error_message="stream broke"))
    resp = await upstream(runtime, mantle).messages(call(True))
    got = b"".join([c async for c in resp.iter_chunks()])
    assert got.endswith(b'event: error\ndata: {"type": "error", "error": {"type": "api_error", "message": "stream broke"}}\n\n')


@pytest.mark.asyncio
async def test_an_error_under_200_is_not_a_success(fakes, monkeypatch) -> None:
    runtime, mantle = fakes
    up = upstream(runtime, mantle)

    async def coral_200(*a: Any, **k: Any) -> Any:
        class R:
            status = 200
            headers = {"content-type": "application/json", "x-amzn-requestid": "r1"}

            async def read(self) -> bytes:
                return b'{"Output":{"__type":"com.amazon.coral.service#UnknownOperationException"},"Version":"1.0"}'

            async def aclose(self) -> None:
                return None
        return R()

    monkeypatch.setattr(http, "post", coral_200)
    resp = await up.messages(call(False))
    assert resp.status == 404 and json.loads(await resp.read())["error"]["type"] == "not_found_error"


@pytest.mark.asyncio
async def test_the_raised_error_names_the_provider(fakes) -> None:
    runtime, mantle = fakes
    runtime.script.append(Reply(anthropic_error="overloaded_error", error_message="Overloaded"))
    up = upstream(runtime, mantle)._inner
    with pytest.raises(UpstreamError) as e:
        await up.messages(call(False))
    assert (e.value.status, e.value.kind, e.value.provider, e.value.answered) == (529, "overloaded_error", "aws", True)


@pytest.mark.asyncio
async def test_a_json_user_id_goes_as_its_hash(fakes) -> None:
    runtime, mantle = fakes
    uid = '{"device_id":"2e53f9","account_uuid":"","session_id":"6b8a9e2e-692c"}'
    up = upstream(runtime, mantle)
    resp = await up.messages(call(False, body={**BODY, "metadata": {"user_id": uid}}))
    assert resp.status == 200, await resp.read()
    assert runtime.requests[-1].json["metadata"] == {"user_id": hashlib.sha256(uid.encode()).hexdigest()}
    fine = {**BODY, "metadata": {"user_id": "user_abc_session_42"}}
    c = call(False, body=fine)
    resp = await up.messages(c)
    assert resp.status == 200, await resp.read()
    assert runtime.requests[-1].body == c.raw_body.replace(b'"claude-opus-5-5"', f'"{OPUS}"'.encode())


def test_the_catalog_field_reaches_the_adapter(tmp_path) -> None:
    cfg = tmp_path / "orgate.yaml"
    cfg.write_text("""
providers:
  aws: {type: bedrock, region: us-east-1, bearer_token: k}
models:
  claude-opus-4.7: {bedrock_api: invoke}
  mine: {deployments: [{provider: aws, model: eu.anthropic.claude-sonnet-4-6}], bedrock_api: messages,
         price: {input: 3, output: 15}}
""")
    api = build_upstreams(load_settings(cfg, env={}))["aws"].inner.messages_api
    assert not api.serves("us.anthropic.claude-opus-4-7")  # the operator's catalog says invoke
    assert api.serves("eu.anthropic.claude-sonnet-4-6")  # a deployment of a model marked messages
    assert api.serves("global.anthropic.claude-opus-5-5") and not api.serves("anthropic.claude-opus-4-6-v1")
