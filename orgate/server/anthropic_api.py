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
from orgate.errors import GatewayError, InternalError, InvalidRequest, UpstreamUnavailable
from orgate.pipeline import Exchange
from orgate.server.asgi import ClientGone, Request, end_stream, respond, start_stream, watched
from orgate.server.keepalive import ANTHROPIC_PING, KeepAlive
from orgate.server.render import answer_headers, anthropic_error, error_headers
from orgate.store.outage import unavailable
from orgate.upstreams.base import UpstreamCall, relayed

if TYPE_CHECKING:
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


async def messages(app: App, req: Request) -> None:
    ex = Exchange(req.request_id, api="anthropic")
    error: GatewayError | None = None
    try:
        await _messages(app, req, ex)
    except GatewayError as e:
        error = e
    except ClientGone:
        ex.disconnected = True
    except asyncio.CancelledError:
        ex.disconnected = True
        raise
    except Exception as e:
        app.log.exception("unexpected error", extra={"request_id": req.request_id})
        error = unavailable(e) or InternalError("Internal server error.")
    finally:
        if error is not None and ex.ttft_ms is None:
            await respond(req.send, error.status, anthropic_error(error, req.request_id),
                          error_headers(error, req.request_id))
        app.pipeline.finish(ex, error)
        app.access_log(ex, error)


async def _messages(app: App, req: Request, ex: Exchange) -> None:
    raw = await req.read_body(app.settings.server.max_body_bytes)
    if app.settings.server.log_prompts:
        ex.prompt = raw
    if await watched(req, lambda: _admitted(app, req, ex, raw)):
        ex.disconnected = True  # the upstream was closed; usage seen so far is billed


async def _admitted(app: App, req: Request, ex: Exchange, raw: bytes) -> None:
    ex.key = await app.auth.authenticate(req.headers)
    top = decode_top(raw)  # the top level only: message content stays bytes (see dialects/anthropic/request.py)
    route = app.pipeline.resolve(ex, top.model)
    await app.pipeline.limit(ex)
    gateway_fields = {"fallbacks": top.fallbacks, "orq": top.orq} if top.has_gateway_fields else {}
    fallbacks = request_fallbacks(app, gateway_fields)
    body: dict[str, Any] | None = None
    raw_body: bytes | None = raw
    if top.has_gateway_fields:
        body = {k: v for k, v in orjson.loads(raw).items() if k not in GATEWAY_FIELDS}
        raw_body = None
    max_tokens = await app.pipeline.reserve(ex, raw, top.max_tokens)
    if max_tokens != top.max_tokens:
        body = {**(body if body is not None else orjson.loads(raw)), "max_tokens": max_tokens}
        raw_body = None  # the body changed: the adapter serializes it
    ex.stream = top.stream is True
    call = UpstreamCall(
        target=route.targets[0] if route.targets else None,  # type: ignore[arg-type]
        body=body, stream=ex.stream, raw_body=raw_body, client_model=ex.model,
        anthropic_version=req.headers.get("anthropic-version", "2023-06-01"),
        anthropic_beta=req.headers.get("anthropic-beta"),
    )
    opened = await app.pipeline.open(ex, call, affinity_of(req.headers, {"metadata": top.metadata}), fallbacks)
    resp = opened.response
    headers = answer_headers(req.request_id, opened)
    if not ex.stream:
        data = await resp.read()
        ex.first_byte()
        try:
            merge_usage(ex.usage, orjson.loads(data).get("usage"))
        except (orjson.JSONDecodeError, AttributeError):
            pass
        await respond(req.send, resp.status, data, headers)
        return
    assert opened.chunks is not None
    await relay_stream(app, req, ex, opened.chunks, resp, headers)


async def relay_stream(app: App, req: Request, ex: Exchange, chunks: Any, resp: Any,
                       headers: dict[str, str]) -> None:
    """Upstream SSE bytes to the client as they arrive; usage read on the side."""
    tee = UsageTee()
    ex.first_byte()
    stage = KeepAlive(req.send, app.settings.server.keepalive_seconds, ANTHROPIC_PING)
    send = stage.send
    await start_stream(send, headers)
    try:
        async for chunk in chunks:
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


async def count_tokens(app: App, req: Request) -> None:
    ex = Exchange(req.request_id, api="anthropic", endpoint="count_tokens")
    error: GatewayError | None = None
    try:
        await req.read_body(app.settings.server.max_body_bytes)
        ex.key = await app.auth.authenticate(req.headers)
        body = req.json()
        validate_messages_body(body, need_max_tokens=False)
        app.pipeline.resolve(ex, body.get("model"))
        call = UpstreamCall(
            target=None, body=body, stream=False, raw_body=req.body, client_model=ex.model,  # type: ignore[arg-type]
            anthropic_version=req.headers.get("anthropic-version", "2023-06-01"),
            anthropic_beta=req.headers.get("anthropic-beta"),
        )
        opened = await app.pipeline.open(ex, call, None, count_tokens=True)
        data = await opened.response.read()
        headers = relayed(opened.response.headers)
        headers.setdefault("request-id", req.request_id)
        headers["x-request-id"] = req.request_id
        await respond(req.send, 200, data, headers)
    except GatewayError as e:
        error = e
        await respond(req.send, e.status, anthropic_error(e, req.request_id), error_headers(e, req.request_id))
    except ClientGone:
        ex.disconnected = True
    finally:
        # Token counting is never billed: no usage, no cost; the row records that it happened.
        app.pipeline.finish(ex, error)
