"""The Anthropic Messages surface: /v1/messages, /v1/messages/count_tokens.

This is the fast path: the client's JSON goes upstream as sent (model id spliced in), and the upstream's
SSE bytes come back unchanged while a tee reads usage from `message_start` / `message_delta` only.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson

from orgate.core.target import Target
from orgate.dialects.anthropic.request import MAX_TOKENS, decode_top
from orgate.dialects.anthropic.sse import MalformedEvent, UsageTee, error_event
from orgate.dialects.anthropic.usage import merge_usage
from orgate.errors import GatewayError, InvalidRequest, UpstreamUnavailable
from orgate.pipeline import Exchange
from orgate.pipeline.flow import Budget
from orgate.server.asgi import ClientGone, Request, end_stream, respond, start_stream
from orgate.server.guard import write_now
from orgate.server.keepalive import ANTHROPIC_PING, KeepAlive
from orgate.server.render import answer_headers, anthropic_error, error_headers
from orgate.upstreams.base import UpstreamCall, relayed

if TYPE_CHECKING:
    from orgate.pipeline import Opened
    from orgate.server.app import App

# Fields of the router's docs that steer the gateway and must not reach the provider.
GATEWAY_FIELDS = ("fallbacks", "orq")


def validate_messages_body(body: dict[str, Any], *, need_max_tokens: bool = True) -> None:
    msgs = body.get("messages")
    if not isinstance(msgs, list):
        raise InvalidRequest("messages: field required (a list of messages)", param="messages")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise InvalidRequest(f"messages.{i}: each message needs a 'role' and 'content'", param=f"messages.{i}")
        if "content" not in m:
            raise InvalidRequest(f"messages.{i}.content: field required", param=f"messages.{i}.content")
    if need_max_tokens:
        mt = body.get("max_tokens")
        if mt is None:
            raise InvalidRequest("max_tokens: field required", param="max_tokens")
        if not isinstance(mt, int) or isinstance(mt, bool) or not 0 <= mt <= MAX_TOKENS:
            raise InvalidRequest(f"max_tokens: must be an integer from 0 to {MAX_TOKENS}", param="max_tokens")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise InvalidRequest("stream: must be a boolean", param="stream")


def request_fallbacks(app: App, body: dict[str, Any]) -> list[Target]:
    """Per-request fallbacks as in the router's docs: `fallbacks: [{model}]` or `orq: {fallbacks: [...]}`."""
    specs: Any = body.get("fallbacks")
    orq = body.get("orq")
    if specs is None and isinstance(orq, dict):
        specs = orq.get("fallbacks")
    if specs is None:
        return []
    if not isinstance(specs, list):
        raise InvalidRequest('fallbacks: must be a list of model ids or {"model": id} objects', param="fallbacks")
    out: list[Target] = []
    for item in specs:
        name = item.get("model") if isinstance(item, dict) else item
        route = app.catalog.resolve(name) if isinstance(name, str) else None
        if route is None:
            raise InvalidRequest(f"fallbacks: unknown model '{name}'", param="fallbacks")
        out.extend(route.targets)
    return out


def affinity_of(headers: dict[str, str], body: dict[str, Any]) -> str | None:
    for h in ("x-claude-code-session-id", "x-session-affinity", "session-id", "x-session-id"):
        if headers.get(h):
            return headers[h]
    meta = body.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("user_id"), str):
        return meta["user_id"]
    return None


class AnthropicPlan:
    """What every plan on the Anthropic surface shares: its errors in the Anthropic shape."""

    api, endpoint, limited = "anthropic", "messages", True

    def __init__(self, app: App, req: Request) -> None:
        self.app, self.req = app, req

    async def reply_error(self, error: GatewayError) -> None:
        rid = self.req.request_id
        await respond(self.req.send, error.status, anthropic_error(error, rid), error_headers(error, rid))

    def release(self) -> None:
        """The request is upstream: drop what refers to its body (see Pipeline._run)."""
        self.raw = self.top = self.raw_body = self.body = None

    def call(self, ex: Exchange, body: dict[str, Any] | None, raw_body: bytes | None, stream: bool) -> UpstreamCall:
        route = ex.route
        assert route is not None
        return UpstreamCall(
            target=route.targets[0] if route.targets else None,  # type: ignore[arg-type]
            body=body, stream=stream, raw_body=raw_body, client_model=ex.model,
            anthropic_version=self.req.headers.get("anthropic-version", "2023-06-01"),
            anthropic_beta=self.req.headers.get("anthropic-beta"),
        )

    async def relay(self, ex: Exchange, opened: Opened) -> None:
        raise AssertionError("not a stream")


class MessagesPlan(AnthropicPlan):
    """The fast path: the client's bytes go upstream with only the model spliced in."""

    async def parse(self, ex: Exchange, raw: bytes) -> MessagesPlan:
        self.raw = raw
        self.top = decode_top(raw)  # the top level only: message content stays bytes (dialects/anthropic/request.py)
        self.app.pipeline.resolve(ex, self.top.model)
        return self

    async def prepare(self, ex: Exchange, raw: bytes) -> Budget:
        top = self.top
        gateway_fields = {"fallbacks": top.fallbacks, "orq": top.orq} if top.has_gateway_fields else {}
        self.fallbacks = request_fallbacks(self.app, gateway_fields)
        self.body: dict[str, Any] | None = None
        self.raw_body: bytes | None = raw
        if top.has_gateway_fields:
            self.body = {k: v for k, v in orjson.loads(raw).items() if k not in GATEWAY_FIELDS}
            self.raw_body = None
        return Budget(raw, top.max_tokens)

    async def open(self, ex: Exchange, allowed: int | None) -> Opened:
        top, body, raw_body = self.top, self.body, self.raw_body
        if allowed is not None and allowed != top.max_tokens:
            body = {**(body if body is not None else orjson.loads(self.raw)), "max_tokens": allowed}
            raw_body = None  # the body changed: the adapter serializes it
        ex.stream = top.stream is True
        call = self.call(ex, body, raw_body, ex.stream)
        return await self.app.pipeline.open(ex, call, affinity_of(self.req.headers, {"metadata": top.metadata}),
                                            self.fallbacks)

    async def answer(self, ex: Exchange, opened: Opened) -> None:
        resp = opened.response
        headers = answer_headers(self.req.request_id, opened)
        data = await resp.read()
        ex.first_byte()
        try:
            merge_usage(ex.usage, orjson.loads(data).get("usage"))
        except (orjson.JSONDecodeError, AttributeError):
            pass
        await respond(self.req.send, resp.status, data, headers)

    async def relay(self, ex: Exchange, opened: Opened) -> None:
        assert opened.chunks is not None
        headers = answer_headers(self.req.request_id, opened)
        await relay_stream(self.app, self.req, ex, opened.chunks, opened.response, headers)


class CountTokensPlan(AnthropicPlan):
    """Token counting: routed like a message, never limited, reserved or billed (the row records it)."""

    endpoint, limited = "count_tokens", False

    async def parse(self, ex: Exchange, raw: bytes) -> CountTokensPlan:
        self.body = self.req.json()
        validate_messages_body(self.body, need_max_tokens=False)
        self.app.pipeline.resolve(ex, self.body.get("model"))
        return self

    async def prepare(self, ex: Exchange, raw: bytes) -> None:
        return None

    async def open(self, ex: Exchange, allowed: int | None) -> Opened:
        call = self.call(ex, self.body, self.req.body, False)
        return await self.app.pipeline.open(ex, call, None, count_tokens=True)

    async def answer(self, ex: Exchange, opened: Opened) -> None:
        data = await opened.response.read()
        headers = relayed(opened.response.headers)
        headers.setdefault("request-id", self.req.request_id)
        headers["x-request-id"] = self.req.request_id
        await respond(self.req.send, 200, data, headers)


async def messages(app: App, req: Request) -> None:
    await app.pipeline.serve(req, MessagesPlan(app, req))


async def count_tokens(app: App, req: Request) -> None:
    await app.pipeline.serve(req, CountTokensPlan(app, req))


async def relay_stream(app: App, req: Request, ex: Exchange, chunks: Any, resp: Any,
                       headers: dict[str, str]) -> None:
    """Upstream SSE bytes to the client as they arrive; usage read on the side."""
    tee = UsageTee()
    ex.first_byte()
    stage = KeepAlive(req.send, app.settings.server.keepalive_seconds, ANTHROPIC_PING)
    send = stage.send
    await start_stream(send, headers)
    try:
        first = True
        async for chunk in chunks:
            if first:
                first = False
                # An upstream that sent many frames at once (the whole stream, even): the first one goes out
                # before the rest are checked, so the client's first byte does not wait for them. Only when
                # this is the only request in flight (write_now): under concurrency the turn's writes stay
                # corked into one, and an extra write per stream would cost more than it saves.
                cut = chunk.find(b"\n\n") + 2
                if 1 < cut < len(chunk) and (flush := write_now(req.receive)) is not None:
                    out = tee.feed(chunk[:cut])
                    if out:
                        await send({"type": "http.response.body", "body": out, "more_body": True})
                        flush()
                    chunk = chunk[cut:]
            out = tee.feed(chunk)  # whole, well-formed frames only
            if out:
                await send({"type": "http.response.body", "body": out, "more_body": True})
        tail = tee.finish()
        if not tee.stopped and tee.error is None:
            tail += error_event("api_error", "The upstream stream ended before message_stop.")
            tee.error = {"type": "api_error"}
        await send({"type": "http.response.body", "body": tail, "more_body": False})
    except UpstreamUnavailable as e:
        tee.error = {"type": e.kind}
        await send({"type": "http.response.body", "body": error_event(e.kind, e.message), "more_body": False})
    except MalformedEvent as e:
        app.log.warning("%s", e, extra={"request_id": req.request_id})
        tee.error = {"type": "api_error"}
        await send({"type": "http.response.body", "more_body": False,
                    "body": e.before + error_event("api_error", "The upstream sent a malformed stream event.")})
    except (ClientGone, asyncio.CancelledError):
        raise
    except Exception:  # headers are out: an error event, then messages() logs it
        tee.error = {"type": "api_error"}
        await end_stream(send, error_event("api_error", "Internal server error."))
        raise
    finally:
        stage.stop()
        # On a client disconnect the task is cancelled here: the upstream is closed and usage so far billed.
        await resp.aclose()
        ex.usage = tee.usage
        if tee.error is not None:
            ex.error_type = tee.error.get("type") or "api_error"
