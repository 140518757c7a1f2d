"""/v1/chat/completions for non-Claude models on `openai` / `openai_compatible` providers: a relay.

No translation: the client's body goes upstream with the model id replaced (and `stream_options.include_usage`
added so a stream can be billed), and the answer comes back as the upstream sent it, byte for byte, except
the trailing usage-only chunk of a stream when the client did not ask for usage. Admission, budget
reservation, routing (retries, fallbacks within the OpenAI family, circuit breaker) and settlement are the
same as every other request's; the price is the model entry's `price` from config, which is required.
Usage: `prompt_tokens` (cached tokens, `prompt_tokens_details.cached_tokens`, billed at the cache-read rate),
`completion_tokens`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from orgate.core.sse import SSEFramer, parse
from orgate.core.usage import Usage
from orgate.dialects.openai_chat.errors import error_body
from orgate.dialects.openai_chat.headers import openai_headers
from orgate.dialects.openai_chat.stream import OpenAIProbe
from orgate.errors import GatewayError, InvalidRequest, UpstreamUnavailable
from orgate.pipeline import Exchange
from orgate.pipeline.flow import Budget
from orgate.routing.catalog import ModelRoute
from orgate.server.anthropic_api import affinity_of, request_fallbacks
from orgate.server.asgi import Request, respond, start_stream
from orgate.server.keepalive import OPENAI_PING, KeepAlive
from orgate.server.render import error_headers, openai_error
from orgate.upstreams.base import UpstreamResponse

if TYPE_CHECKING:
    from orgate.pipeline import Opened
    from orgate.server.app import App


def handles(route: ModelRoute) -> bool:
    """Is this model served by an OpenAI-compatible provider (so the relay, not the Claude hub, answers)?"""
    return bool(route.targets) and route.targets[0].family == "openai"


def usage_of(u: Any) -> Usage | None:
    if not isinstance(u, dict):
        return None
    prompt, completion = u.get("prompt_tokens"), u.get("completion_tokens")
    details = u.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    cached = cached if isinstance(cached, int) else 0
    prompt = prompt if isinstance(prompt, int) else 0
    return Usage(input_tokens=max(0, prompt - cached), output_tokens=completion if isinstance(completion, int) else 0,
                 cache_read_tokens=cached)


def _max_tokens(body: dict[str, Any], route: ModelRoute) -> tuple[str, int]:
    for name in ("max_completion_tokens", "max_tokens"):
        v = body.get(name)
        if v is not None:
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InvalidRequest(f"{name}: must be a positive integer", param=name)
            return name, v
    return "max_tokens", route.entry.max_output_tokens or route.entry.default_max_tokens


class OpenAIPlan:
    """What every plan on the OpenAI surfaces shares: its errors in the OpenAI shape."""

    limited = True

    def __init__(self, app: App, req: Request, api: str, endpoint: str) -> None:
        self.app, self.req, self.api, self.endpoint = app, req, api, endpoint

    async def reply_error(self, error: GatewayError) -> None:
        rid = self.req.request_id
        await respond(self.req.send, error.status, openai_error(error, rid), error_headers(error, rid))

    def release(self) -> None:
        """The request is upstream: drop the client's bytes (the parsed body stays: the response store and
        the stream's encoder read it)."""
        self.raw = None


class RelayPlan(OpenAIPlan):
    """A non-Claude model on an OpenAI-compatible provider: the client's chat body relayed (chosen by the
    translating plan once the model is resolved)."""

    def parsed(self, body: dict[str, Any], raw: bytes) -> RelayPlan:
        self.body, self.raw = body, raw
        return self

    async def parse(self, ex: Exchange, raw: bytes) -> RelayPlan:
        if self.endpoint != "chat/completions":
            raise InvalidRequest(f"model '{ex.model}' is served on /v1/chat/completions only", param="model")
        if "messages" not in self.body:
            raise InvalidRequest("messages: field required", param="messages")
        return self

    async def prepare(self, ex: Exchange, raw: bytes) -> Budget:
        assert ex.route is not None
        self.fallbacks = request_fallbacks(self.app, self.body)
        self.name, self.asked = _max_tokens(self.body, ex.route)
        return Budget(self.raw, self.asked)

    async def open(self, ex: Exchange, allowed: int | None) -> Opened:
        body = self.body
        if allowed is not None and (allowed != self.asked or self.name not in body and ex.ticket is not None):
            body = {**body, self.name: allowed}  # lowered to what the budget covers
        ex.stream = bool(body.get("stream"))
        opts = body.get("stream_options")
        self.client_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        return await self.app.pipeline.open_relay(ex, body, affinity_of(self.req.headers, body), self.fallbacks,
                                                  OpenAIProbe)

    def headers(self, opened: Opened) -> dict[str, str]:
        headers = openai_headers(opened.response.headers)
        headers.setdefault("x-request-id", self.req.request_id)
        headers["request-id"] = self.req.request_id
        headers["x-orgate-provider"] = opened.target.provider
        return headers

    async def answer(self, ex: Exchange, opened: Opened) -> None:
        resp = opened.response
        data = await resp.read()
        ex.first_byte()
        try:
            u = usage_of(orjson.loads(data).get("usage"))
        except (orjson.JSONDecodeError, AttributeError):
            u = None
        if u is not None:
            ex.usage = u
        await respond(self.req.send, resp.status, data, self.headers(opened))

    async def relay(self, ex: Exchange, opened: Opened) -> None:
        assert opened.chunks is not None
        await _relay_stream(self.req, ex, opened.chunks, opened.response, self.headers(opened), self.client_usage,
                            self.app.settings.server.keepalive_seconds)


class StreamTee:
    """Splits the upstream SSE into events to read usage and drop the usage-only chunk nobody asked for."""

    def __init__(self, keep_usage_chunk: bool) -> None:
        self.keep = keep_usage_chunk
        self._framer = SSEFramer()
        self.usage: Usage | None = None
        self.done = False

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(b for b in self._framer.blocks(chunk) if self._observe(b))

    def finish(self) -> bytes:
        return b"".join(b for b in self._framer.finish_blocks() if b.strip() and self._observe(b))

    def _observe(self, block: bytes) -> bool:
        """Reads one event; False when it must not reach the client."""
        event = parse(block)
        if event is None:
            return True  # comments and keep-alives pass
        data = event[1]
        if data == b"[DONE]":
            self.done = True
            return True
        if b'"usage"' not in data:
            return True
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return True
        u = usage_of(obj.get("usage")) if isinstance(obj, dict) else None
        if u is None:
            return True
        self.usage = u
        return self.keep or bool(obj.get("choices"))


async def _relay_stream(req: Request, ex: Exchange, chunks: Any, resp: UpstreamResponse,
                        headers: dict[str, str], client_usage: bool, keepalive: float) -> None:
    tee = StreamTee(client_usage)
    stage = KeepAlive(req.send, keepalive, OPENAI_PING)
    send = stage.send
    ex.first_byte()
    await start_stream(send, headers)
    try:
        async for chunk in chunks:
            out = tee.feed(chunk)
            if out:
                await send({"type": "http.response.body", "body": out, "more_body": True})
        tail = tee.finish()
        if not tee.done:
            ex.error_type = "api_error"
            tail += _error_event("api_error", "The upstream stream ended before [DONE].")
        await send({"type": "http.response.body", "body": tail, "more_body": False})
    except UpstreamUnavailable as e:
        ex.error_type = e.kind
        # A partial event is dropped: the client gets whole events, then the error.
        await send({"type": "http.response.body", "body": _error_event(e.kind, e.message), "more_body": False})
    finally:
        stage.stop()
        await resp.aclose()
        if tee.usage is not None:
            ex.usage = tee.usage


def _error_event(kind: str, message: str) -> bytes:
    return b"data: " + error_body(kind, message) + b"\n\n"
