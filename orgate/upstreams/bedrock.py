"""Claude on AWS Bedrock (InvokeModel), answered in the Anthropic wire format.

Models served on Bedrock's Messages API (Claude Opus 4.7 and later) take upstreams/bedrock_messages.py instead.

Request: the Anthropic Messages body without `model` (it is in the URL) and `stream` (the endpoint decides),
plus `anthropic_version: bedrock-2023-05-31` and the `anthropic-beta` header as an `anthropic_beta` list.
Model ids (base ids, cross-region profiles `us.`/`eu.`/`apac.`/`global.`…, ARNs) go in the path as given,
percent-encoded as boto3 does, and the request is SigV4-signed (or carries a Bedrock API key).

Response: a 200 body is already an Anthropic Message. Errors (AWS JSON `{"message"}` with the exception name
in `x-amzn-errortype`) are raised as UpstreamError with the status and kind from EXCEPTIONS and AWS's message. A stream is AWS event-stream; each
`chunk` carries one Anthropic event as base64 JSON and is re-emitted byte for byte as an SSE frame (so
thinking signatures pass unchanged); an exception frame becomes `event: error` and ends the stream.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import orjson
import yarl

from orgate.config import Provider, RoutingSettings
from orgate.dialects.anthropic.sse import encode_event
from orgate.errors import UpstreamError, cloud_status
from orgate.upstreams import http
from orgate.upstreams.base import (
    BufferedResponse,
    UpstreamCall,
    UpstreamResponse,
    error_answer,
    relayed,
    retry_after_seconds,
)
from orgate.upstreams.betas import BetaPolicy, split
from orgate.upstreams.eventstream import EventStreamDecoder, EventStreamError
from orgate.upstreams.sigv4 import AwsAuth

BEDROCK_VERSION = "bedrock-2023-05-31"

# AWS exception name -> (status for an Anthropic client, Anthropic error type). Api reference §D.11, §E.5.
EXCEPTIONS: dict[str, tuple[int, str]] = {
    "ValidationException": (400, "invalid_request_error"),
    "AccessDeniedException": (403, "permission_error"),
    "ResourceNotFoundException": (404, "not_found_error"),
    "ThrottlingException": (429, "rate_limit_error"),
    "ServiceQuotaExceededException": (429, "rate_limit_error"),
    "ModelNotReadyException": (529, "overloaded_error"),
    "ServiceUnavailableException": (529, "overloaded_error"),
    "ModelTimeoutException": (504, "timeout_error"),
    "ModelErrorException": (500, "api_error"),
    "ModelStreamErrorException": (500, "api_error"),
    "InternalServerException": (500, "api_error"),
    "InternalFailure": (500, "api_error"),
    # The gateway's own AWS credentials are wrong: the same answer as a bad x-api-key first-party.
    "UnrecognizedClientException": (401, "authentication_error"),
    "InvalidSignatureException": (401, "authentication_error"),
    "IncompleteSignatureException": (401, "authentication_error"),
    "MissingAuthenticationTokenException": (401, "authentication_error"),
    "ExpiredTokenException": (401, "authentication_error"),
}
# Cross-region inference profile prefixes (geography before `anthropic.`).
PROFILE_PREFIX = re.compile(r"^(?:us|eu|apac|jp|au|ca|us-gov|global)\.(?=anthropic\.)")


def exception_kind(name: str | None, status: int) -> tuple[int, str]:
    if name:
        name = name.split(":", 1)[0].split("#")[-1].strip()  # "ThrottlingException:http://…", "aws#Name"
        key = name[:1].upper() + name[1:]  # stream exceptions are camelCase: throttlingException
        if key in EXCEPTIONS:
            return EXCEPTIONS[key]
    return cloud_status(status)  # no exception name came with the error


class RelayedResponse:
    """An upstream response passed through with gateway-shaped headers."""

    __slots__ = ("status", "headers", "_inner")

    def __init__(self, inner: http.HttpResponse, headers: dict[str, str]) -> None:
        self._inner = inner
        self.status = inner.status
        self.headers = headers

    async def read(self) -> bytes:
        return await self._inner.read()

    def iter_chunks(self) -> AsyncIterator[bytes]:
        return self._inner.iter_chunks()

    async def aclose(self) -> None:
        await self._inner.aclose()


def aws_headers(upstream: dict[str, str]) -> dict[str, str]:
    out = relayed(upstream)
    rid = upstream.get("x-amzn-requestid")
    if rid and "request-id" not in out:
        out["request-id"] = rid
    return out


async def mapped_error(resp: http.HttpResponse, provider: str | None = None) -> UpstreamError:
    """An AWS error answer as the typed error: status and kind from EXCEPTIONS, AWS's message unchanged."""
    raw = await resp.read()
    message = ""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        obj = None
    name = resp.headers.get("x-amzn-errortype")
    headers = aws_headers(resp.headers)
    if isinstance(obj, dict):
        if obj.get("type") == "error" and isinstance(obj.get("error"), dict):  # already Anthropic-shaped
            return error_answer(resp.status, raw, headers, provider)
        message = str(obj.get("message") or obj.get("Message") or "")
        name = name or obj.get("__type")
    if not message:
        message = raw.decode("utf-8", "replace")[:500] or f"Bedrock returned HTTP {resp.status}"
    status, kind = exception_kind(name, resp.status)
    detail = {"__type": name, "message": message}
    if kind == "invalid_request_error":
        message = overflow_worded(message)
    return UpstreamError(message, status=status, kind=kind, headers=headers, retry_after=retry_after_seconds(headers),
                         provider=provider, detail=detail, answered=True)


# Bedrock's own words for a prompt over the model's context window. Clients recover from an overflow by its
# wording: Claude Code compacts on Anthropic's "prompt is too long", and the OpenAI surfaces turn that prefix
# into `context_length_exceeded`. So the prefix is put in front; Bedrock's words stay after it.
BEDROCK_OVERFLOW = ("input is too long for requested model",)


def overflow_worded(message: str) -> str:
    low = message.lower()
    if low.startswith("prompt is too long") or not any(p in low for p in BEDROCK_OVERFLOW):
        return message
    return "prompt is too long: " + message


class BedrockStream:
    """AWS event-stream in, Anthropic SSE out."""

    __slots__ = ("status", "headers", "_inner")

    def __init__(self, inner: http.HttpResponse) -> None:
        self._inner = inner
        self.status = inner.status
        self.headers = {**aws_headers(inner.headers), "content-type": "text/event-stream; charset=utf-8"}

    async def read(self) -> bytes:
        return b"".join([c async for c in self.iter_chunks()])

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        decoder = EventStreamDecoder()
        try:
            async for raw in self._inner.iter_chunks():
                try:
                    messages = decoder.feed(raw)
                except EventStreamError as e:
                    out, done = _convert(e.messages)
                    yield out + (b"" if done else _error_frame("api_error", f"Bedrock stream corrupt: {e}"))
                    return
                out, done = _convert(messages)
                if out:
                    yield out
                if done:
                    return
            try:
                decoder.finish()
            except EventStreamError as e:
                yield _error_frame("api_error", f"Bedrock stream truncated: {e}")
        finally:
            await self._inner.aclose()

    async def aclose(self) -> None:
        await self._inner.aclose()


def _error_frame(kind: str, message: str) -> bytes:
    return encode_event("error", {"type": "error", "error": {"type": kind, "message": message}})


def _convert(messages: list[Any]) -> tuple[bytes, bool]:
    """SSE bytes for decoded event-stream messages, and whether the stream is over (an error was seen)."""
    out: list[bytes] = []
    for m in messages:
        mtype = m.message_type
        if mtype == "exception":
            body = _loads(m.payload)
            _, kind = exception_kind(m.exception_type, 500)
            out.append(_error_frame(kind, str(body.get("message") or body.get("Message") or m.exception_type)))
            return b"".join(out), True
        if mtype == "error":
            _, kind = exception_kind(str(m.headers.get(":error-code") or ""), 500)
            out.append(_error_frame(kind, str(m.headers.get(":error-message") or "Bedrock stream error")))
            return b"".join(out), True
        if m.event_type != "chunk":
            continue  # unknown event types are ignored, as Anthropic's versioning policy asks
        b64 = _loads(m.payload).get("bytes")
        if not isinstance(b64, str):
            continue
        try:
            data = base64.b64decode(b64, validate=True)
        except ValueError:
            out.append(_error_frame("api_error", "Bedrock stream chunk is not base64"))
            return b"".join(out), True
        event = _loads(data).get("type")
        if not isinstance(event, str):
            continue
        out.append(encode_event(event, data))
        if event == "error":
            return b"".join(out), True
    return b"".join(out), False


def _loads(data: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return obj if isinstance(obj, dict) else {}


def bedrock_body(body: dict[str, Any], beta: str | None, policy: BetaPolicy | None = None,
                 counting: bool = False) -> dict[str, Any]:
    """The InvokeModel body: header betas join the body's `anthropic_beta` list, bridged through `policy`."""
    betas = [b for b in body.get("anthropic_beta") or [] if isinstance(b, str)]
    betas += [b for b in split(beta) if b not in betas]
    if policy is not None:
        betas, body = policy.bridge(betas, body, counting)
    out = {k: v for k, v in body.items() if k not in ("model", "stream")}
    out.setdefault("anthropic_version", BEDROCK_VERSION)
    if betas:
        out["anthropic_beta"] = betas
    else:
        out.pop("anthropic_beta", None)
    return out


class BedrockUpstream:
    def __init__(self, name: str, provider: Provider, routing: RoutingSettings,
                 model_apis: dict[str, str] | None = None) -> None:
        from orgate.upstreams.bedrock_messages import MessagesApi

        self.name = name
        self.region = provider.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        # AWS writes the Messages API's base URL with `/anthropic`; InvokeModel's paths hang off the host.
        self.base_url = (provider.base_url or f"https://bedrock-runtime.{self.region}.amazonaws.com").rstrip("/").removesuffix("/anthropic")
        self.auth = AwsAuth(provider, self.region)
        self.betas = BetaPolicy.for_provider("bedrock", provider.betas_add, provider.betas_remove)
        t = provider.timeouts
        self.connect_timeout = t.get("connect", routing.connect_timeout)
        self.first_byte_timeout = t.get("first_byte", routing.first_byte_timeout)
        self.idle_timeout = t.get("idle", routing.idle_timeout)
        # Models from Claude Opus 4.7 on: the Anthropic Messages API (upstreams/bedrock_messages.py).
        self.messages_api = MessagesApi(name, provider, self.region, self.base_url, self.auth, self.betas, model_apis)

    def url(self, model: str, action: str) -> str:
        # boto3 encodes the label fully (`:` -> %3A, `/` in ARNs -> %2F); SigV4 then encodes the path again.
        return f"{self.base_url}/model/{quote(model, safe='')}/{action}"

    async def _post(self, url: str, data: bytes, headers: dict[str, str], read: float,
                    idle: float | None = None) -> http.HttpResponse:
        signed = await self.auth.headers("POST", url, headers, data)
        # encoded=True: send the path byte for byte as signed (yarl would otherwise turn %3A back into `:`).
        return await http.post(yarl.URL(url, encoded=True), data, signed, connect=self.connect_timeout, read=read, idle=idle)

    def _headers(self, call: UpstreamCall, accept: str = "application/json") -> dict[str, str]:
        h = {"content-type": "application/json", "accept": accept, "accept-encoding": "identity"}
        for k, v in call.extra_headers.items():
            if k.lower().startswith("x-amzn-bedrock-"):  # guardrails, latency tier, service tier, trace
                h[k.lower()] = v
        return h

    async def messages(self, call: UpstreamCall) -> UpstreamResponse:
        if self.messages_api.serves(call.target.upstream_model):
            return await self.messages_api.messages(call, self.connect_timeout, self.first_byte_timeout, self.idle_timeout)
        data = orjson.dumps(bedrock_body(call.json(), call.anthropic_beta, self.betas))
        model = call.target.upstream_model
        if call.stream:
            headers = self._headers(call)
            headers["x-amzn-bedrock-accept"] = "application/json"
            resp = await self._post(self.url(model, "invoke-with-response-stream"), data, headers,
                                    self.first_byte_timeout, self.idle_timeout)
        else:
            resp = await self._post(self.url(model, "invoke"), data, self._headers(call), self.first_byte_timeout)
        if resp.status >= 300:
            raise await mapped_error(resp, self.name)
        if call.stream:
            return BedrockStream(resp)
        return RelayedResponse(resp, {**aws_headers(resp.headers), "content-type": "application/json"})

    async def count_tokens(self, call: UpstreamCall) -> UpstreamResponse:
        if self.messages_api.serves(call.target.upstream_model):
            return await self.messages_api.count_tokens(call, self.connect_timeout, self.first_byte_timeout)
        body = bedrock_body(call.json(), call.anthropic_beta, self.betas, counting=True)
        body.setdefault("max_tokens", 1)  # the InvokeModel schema requires it; count_tokens bodies have none
        invoke = orjson.dumps(body)
        data = orjson.dumps({"input": {"invokeModel": {"body": base64.b64encode(invoke).decode()}}})
        # CountTokens takes foundation-model ids, not inference profiles; the tokenizer is the same.
        model = PROFILE_PREFIX.sub("", call.target.upstream_model)
        resp = await self._post(self.url(model, "count-tokens"), data, self._headers(call), self.first_byte_timeout)
        if resp.status >= 300:
            raise await mapped_error(resp, self.name)
        result = _loads(await resp.read())
        headers = {**aws_headers(resp.headers), "content-type": "application/json"}
        if not isinstance(result.get("inputTokens"), int):
            raise UpstreamError("Bedrock CountTokens answered without inputTokens", status=502, kind="api_error",
                                headers=headers, provider=self.name, answered=True)
        return BufferedResponse(200, headers, orjson.dumps({"input_tokens": result["inputTokens"]}))

    async def aclose(self) -> None:
        return None
