"""BedrockUpstream against the Bedrock fake (real HTTP, signatures checked by botocore)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from orgate.config import Provider, RoutingSettings
from orgate.core.sse import SSEFramer
from orgate.core.target import Target
from orgate.dialects.anthropic.sse import UsageTee
from orgate.upstreams import http
from orgate.upstreams.base import UpstreamCall
from orgate.upstreams.bedrock import BedrockUpstream, exception_kind
from tests.fakes.bedrock_fake import BedrockFake, Reply, text_message, thinking_message, tool_use_message
from tests.upstreams import answered

AKID, SECRET = "AKIDFAKEEXAMPLE", "fake/secret/key"
TEMP_AKID, TEMP_SECRET, TEMP_TOKEN = "ASIAFAKETEMP", "temp+secret", "IQoJb3JpZ2luX2VjEA//session+token=="
MODEL = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 256, "stream": True, "messages": [{"role": "user", "content": "Hi"}]}


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[BedrockFake]:
    f = BedrockFake(keys={AKID: (SECRET, None), TEMP_AKID: (TEMP_SECRET, TEMP_TOKEN)}, bearer_tokens={"ABSK-fake-api-key"})
    await f.start()
    yield f
    await f.stop()
    await http.close_session()


def upstream(fake: BedrockFake, **creds: Any) -> Any:
    creds = creds or {"aws_access_key_id": AKID, "aws_secret_access_key": SECRET}
    return answered(BedrockUpstream("bedrock", Provider(type="bedrock", region="us-east-1", base_url=fake.url, **creds), RoutingSettings()))


def call(stream: bool, model: str = MODEL, body: dict | None = None, beta: str | None = None) -> UpstreamCall:
    return UpstreamCall(Target("bedrock", "bedrock", model), dict(body or BODY), stream, anthropic_beta=beta)


async def collect(resp: Any) -> list[tuple[str, dict]]:
    decoder = SSEFramer()
    frames = []
    async for chunk in resp.iter_chunks():
        frames += decoder.feed(chunk)
    frames += decoder.finish()
    return [(name, json.loads(data)) for name, data in frames]


@pytest.mark.asyncio
async def test_invoke_non_stream(fake: BedrockFake) -> None:
    fake.script.append(Reply(message=text_message("Bonjour")))
    resp = await upstream(fake).messages(call(False, beta="context-1m-2025-08-07, interleaved-thinking-2025-05-14"))
    assert resp.status == 200
    msg = json.loads(await resp.read())
    assert msg["type"] == "message" and msg["content"] == [{"type": "text", "text": "Bonjour"}]
    assert resp.headers["request-id"] and resp.headers["content-type"] == "application/json"
    (rec,) = fake.requests
    assert rec.action == "invoke" and rec.model == MODEL
    assert rec.raw_path == "/model/global.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"
    assert "model" not in rec.json and "stream" not in rec.json
    assert rec.json["anthropic_version"] == "bedrock-2023-05-31"
    assert rec.json["anthropic_beta"] == ["context-1m-2025-08-07", "interleaved-thinking-2025-05-14"]
    assert rec.json["messages"] == BODY["messages"] and rec.json["max_tokens"] == 256
    assert rec.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "model",
    ["anthropic.claude-haiku-4-5-20251001-v1:0", "us.anthropic.claude-opus-4-5-20251101-v1:0", "eu.anthropic.claude-sonnet-4-6", "apac.anthropic.claude-sonnet-4-5-20250929-v1:0",
     "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"],
)  # fmt: skip
async def test_model_ids_passed_as_given(fake: BedrockFake, model: str) -> None:
    resp = await upstream(fake).messages(call(False, model=model))
    assert resp.status == 200, await resp.read()
    assert fake.requests[0].model == model


@pytest.mark.asyncio
async def test_stream_thinking_signature_unchanged(fake: BedrockFake) -> None:
    sig = "EqQBCkYIARgCKkD+/abc==" + "x" * 300
    fake.script.append(Reply(message=thinking_message("Think hard.", sig, "Answer."), write_size=7))
    resp = await upstream(fake).messages(call(True))
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/event-stream")
    events = await collect(resp)
    names = [n for n, _ in events]
    assert names == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert all(d["type"] == n for n, d in events)
    assert events[3][1]["delta"] == {"type": "signature_delta", "signature": sig}
    assert "amazon-bedrock-invocationMetrics" in events[-1][1]
    assert fake.requests[0].action == "invoke-with-response-stream"
    assert "stream" not in fake.requests[0].json


@pytest.mark.asyncio
async def test_stream_tool_use_accumulates(fake: BedrockFake) -> None:
    fake.script.append(Reply(message=tool_use_message("get_weather", {"location": "Paris", "unit": "c"})))
    resp = await upstream(fake).messages(call(True))
    events = await collect(resp)
    partial = "".join(d["delta"]["partial_json"] for n, d in events if n == "content_block_delta" and d["index"] == 1)
    assert json.loads(partial) == {"location": "Paris", "unit": "c"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    tee = UsageTee()
    tee.feed(b"".join(f"event: {n}\ndata: {json.dumps(d)}\n\n".encode() for n, d in events))
    assert tee.stopped and tee.stop_reason == "tool_use" and tee.usage is not None


@pytest.mark.asyncio
async def test_wrong_secret_rejected(fake: BedrockFake) -> None:
    resp = await upstream(fake, aws_access_key_id=AKID, aws_secret_access_key="wrong").messages(call(False))
    assert resp.status == 401
    body = json.loads(await resp.read())
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    assert "signature" in body["error"]["message"]


@pytest.mark.asyncio
async def test_unknown_key_rejected(fake: BedrockFake) -> None:
    resp = await upstream(fake, aws_access_key_id="AKIDNOPE", aws_secret_access_key=SECRET).messages(call(False))
    assert resp.status == 401
    assert json.loads(await resp.read())["error"]["type"] == "authentication_error"


@pytest.mark.asyncio
async def test_session_token(fake: BedrockFake) -> None:
    good = upstream(fake, aws_access_key_id=TEMP_AKID, aws_secret_access_key=TEMP_SECRET, aws_session_token=TEMP_TOKEN)
    assert (await good.messages(call(False))).status == 200
    assert fake.requests[-1].headers["X-Amz-Security-Token"] == TEMP_TOKEN
    bad = upstream(fake, aws_access_key_id=TEMP_AKID, aws_secret_access_key=TEMP_SECRET, aws_session_token="stale")
    assert (await bad.messages(call(False))).status == 401


@pytest.mark.asyncio
async def test_bearer_api_key(fake: BedrockFake) -> None:
    assert (await upstream(fake, bearer_token="ABSK-fake-api-key").messages(call(False))).status == 200
    assert fake.requests[-1].headers["Authorization"] == "Bearer ABSK-fake-api-key"
    assert (await upstream(fake, bearer_token="ABSK-wrong").messages(call(False))).status == 401


@pytest.mark.asyncio
async def test_bearer_from_env(fake: BedrockFake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSK-fake-api-key")
    up = BedrockUpstream("b", Provider(type="bedrock", region="us-east-1", base_url=fake.url), RoutingSettings())
    assert (await up.messages(call(False))).status == 200


@pytest.mark.asyncio
async def test_throttling_maps_to_429(fake: BedrockFake) -> None:
    fake.script.append(Reply(error="ThrottlingException", error_message="Too many requests, please wait before trying again.", headers={"Retry-After": "7"}))
    resp = await upstream(fake).messages(call(True))
    assert resp.status == 429
    assert json.loads(await resp.read()) == {"type": "error", "error": {"type": "rate_limit_error", "message": "Too many requests, please wait before trying again."}}
    assert resp.headers["retry-after"] == "7" and resp.headers["request-id"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("exception", "status", "kind"),
    [("ValidationException", 400, "invalid_request_error"), ("AccessDeniedException", 403, "permission_error"),
     ("ResourceNotFoundException", 404, "not_found_error"), ("ServiceQuotaExceededException", 429, "rate_limit_error"),
     ("ModelNotReadyException", 529, "overloaded_error"), ("ServiceUnavailableException", 529, "overloaded_error"),
     ("ModelTimeoutException", 504, "timeout_error"), ("ModelErrorException", 500, "api_error"),
     ("InternalServerException", 500, "api_error")],
)  # fmt: skip
async def test_error_table(fake: BedrockFake, exception: str, status: int, kind: str) -> None:
    fake.script.append(Reply(error=exception, error_message=f"{exception} happened"))
    resp = await upstream(fake).messages(call(False))
    assert resp.status == status
    assert json.loads(await resp.read())["error"] == {"type": kind, "message": f"{exception} happened"}


def test_exception_names_normalised() -> None:
    assert exception_kind("ThrottlingException:http://internal.amazon.com/coral/", 429) == (429, "rate_limit_error")
    assert exception_kind("com.amazon.bedrock#ValidationException", 400) == (400, "invalid_request_error")
    assert exception_kind(None, 503) == (529, "overloaded_error")
    assert exception_kind("SomethingNew", 418) == (400, "invalid_request_error")


@pytest.mark.asyncio
async def test_invalid_body_is_400(fake: BedrockFake) -> None:
    body = {k: v for k, v in BODY.items() if k != "max_tokens"}
    resp = await upstream(fake).messages(call(False, body=body))
    assert resp.status == 400
    assert json.loads(await resp.read())["error"]["type"] == "invalid_request_error"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("exception", "kind"),
    [("throttlingException", "rate_limit_error"), ("modelStreamErrorException", "api_error"), ("internalServerException", "api_error"),
     ("serviceUnavailableException", "overloaded_error"), ("validationException", "invalid_request_error"), ("modelTimeoutException", "timeout_error")],
)  # fmt: skip
async def test_mid_stream_exception_becomes_error_event(fake: BedrockFake, exception: str, kind: str) -> None:
    fake.script.append(Reply(message=text_message("A long answer that gets cut."), stream_exception=exception, cut_after=4, error_message="stream broke"))
    resp = await upstream(fake).messages(call(True))
    assert resp.status == 200
    events = await collect(resp)
    assert [n for n, _ in events] == ["message_start", "content_block_start", "ping", "content_block_delta", "error"]
    assert events[-1][1] == {"type": "error", "error": {"type": kind, "message": "stream broke"}}


@pytest.mark.asyncio
async def test_crc_mismatch_ends_stream_with_error(fake: BedrockFake) -> None:
    fake.script.append(Reply(message=text_message("Hello there"), corrupt_frame=2))
    events = await collect(await upstream(fake).messages(call(True)))
    assert [n for n, _ in events] == ["message_start", "content_block_start", "error"]
    assert events[-1][1]["error"]["type"] == "api_error" and "CRC" in events[-1][1]["error"]["message"]


@pytest.mark.asyncio
async def test_anthropic_error_inside_chunk(fake: BedrockFake) -> None:
    start = {"type": "message_start", "message": {**text_message(), "content": []}}
    err = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    fake.script.append(Reply(events=[start, err, {"type": "message_stop"}]))
    events = await collect(await upstream(fake).messages(call(True)))
    assert events == [("message_start", start), ("error", err)]


@pytest.mark.asyncio
async def test_count_tokens(fake: BedrockFake) -> None:
    fake.script.append(Reply(input_tokens=42))
    body = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Count me"}], "system": "Be brief."}
    resp = await upstream(fake).count_tokens(call(False, model="us.anthropic.claude-sonnet-4-5-20250929-v1:0", body=body, beta="token-counting-2024-11-01,context-1m-2025-08-07"))
    assert resp.status == 200
    assert json.loads(await resp.read()) == {"input_tokens": 42}
    (rec,) = fake.requests
    assert rec.action == "count-tokens" and rec.model == "anthropic.claude-sonnet-4-5-20250929-v1:0"
    import base64

    invoke = json.loads(base64.b64decode(rec.json["input"]["invokeModel"]["body"]))
    assert invoke["anthropic_version"] == "bedrock-2023-05-31" and "model" not in invoke
    assert invoke["system"] == "Be brief." and invoke["anthropic_beta"] == ["context-1m-2025-08-07"]  # a first-party-only beta is not sent


@pytest.mark.asyncio
async def test_count_tokens_error_mapped(fake: BedrockFake) -> None:
    fake.script.append(Reply(error="ThrottlingException", error_message="slow down"))
    resp = await upstream(fake).count_tokens(call(False, body={"messages": [{"role": "user", "content": "x"}]}))
    assert resp.status == 429 and json.loads(await resp.read())["error"]["type"] == "rate_limit_error"


def test_default_url_and_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    up = BedrockUpstream("b", Provider(type="bedrock", region="eu-central-1", bearer_token="k"), RoutingSettings())
    assert up.url("eu.anthropic.claude-opus-4-5-20251101-v1:0", "invoke") == (
        "https://bedrock-runtime.eu-central-1.amazonaws.com/model/eu.anthropic.claude-opus-4-5-20251101-v1%3A0/invoke"
    )
    assert BedrockUpstream("b", Provider(type="bedrock", bearer_token="k"), RoutingSettings()).region == "us-east-1"


@pytest.mark.asyncio
async def test_bedrock_headers_signed_others_dropped(fake: BedrockFake) -> None:
    c = call(False)
    c.extra_headers = {"X-Amzn-Bedrock-GuardrailIdentifier": "gr-123", "anthropic-dangerous-direct-browser-access": "true"}
    assert (await upstream(fake).messages(c)).status == 200
    rec = fake.requests[0]
    assert rec.headers["x-amzn-bedrock-guardrailidentifier"] == "gr-123"
    assert "anthropic-dangerous-direct-browser-access" not in rec.headers
    assert "x-amzn-bedrock-guardrailidentifier" in rec.headers["Authorization"]


@pytest.mark.asyncio
async def test_bedrock_overflow_wording_reaches_clients_as_prompt_is_too_long(fake: BedrockFake) -> None:
    """Bedrock says "Input is too long for requested model."; Claude Code compacts only on "prompt is too long"."""
    fake.script.append(Reply(error="ValidationException", error_message="Input is too long for requested model."))
    resp = await upstream(fake).messages(call(False))
    assert resp.status == 400
    assert json.loads(await resp.read())["error"] == {
        "type": "invalid_request_error", "message": "prompt is too long: Input is too long for requested model."}
    fake.script.append(Reply(error="ValidationException", error_message="messages: at least one message is required"))
    resp = await upstream(fake).messages(call(False))
    assert json.loads(await resp.read())["error"]["message"] == "messages: at least one message is required"
