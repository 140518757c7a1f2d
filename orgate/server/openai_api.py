"""The OpenAI surfaces: /v1/chat/completions (also /v2/router/chat/completions) and /v1/responses.

Both translate through the Anthropic hub: the dialect turns the client's body into an Anthropic request,
the pipeline admits, reserves, routes and settles exactly as on /v1/messages, and the dialect's encoder
turns the upstream's Anthropic events into the client's stream. Usage is read by the same tee as on the
passthrough path, so a request costs the same whichever API the client speaks.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from orgate.core.sse import SSEFramer
from orgate.dialects import openai_chat, openai_responses
from orgate.dialects.anthropic import caching
from orgate.dialects.anthropic.sse import MalformedEvent, UsageTee
from orgate.dialects.anthropic.usage import merge_usage
from orgate.dialects.openai_responses import compaction
from orgate.errors import UpstreamUnavailable
from orgate.governance.keys import KeyRecord
from orgate.pipeline import Exchange
from orgate.pipeline.flow import Budget
from orgate.routing.catalog import ModelRoute
from orgate.server import openai_passthrough
from orgate.server.anthropic_api import affinity_of, request_fallbacks
from orgate.server.asgi import ClientGone, Request, end_stream, respond, start_stream
from orgate.server.keepalive import OPENAI_PING, KeepAlive
from orgate.server.openai_passthrough import OpenAIPlan
from orgate.server.render import answer_headers
from orgate.upstreams.base import UpstreamCall

if TYPE_CHECKING:
    from orgate.pipeline import Opened
    from orgate.server.app import App


class Encoder(Protocol):
    def feed(self, event: dict[str, Any]) -> bytes: ...
    def finish(self) -> bytes: ...
    def error(self, kind: str, message: str, status: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Turn:
    """One translated request: what the dialect needs to answer it."""

    body: dict[str, Any]  # the client's request
    model: str  # the name the client asked for, echoed in responses
    key: KeyRecord
    created: int


class Dialect(Protocol):
    api: str
    endpoint: str

    def to_anthropic(self, app: App, turn: Turn, route: ModelRoute) -> tuple[dict[str, Any], list[str]]: ...
    def from_anthropic(self, app: App, turn: Turn, message: dict[str, Any]) -> dict[str, Any]: ...
    def encoder(self, app: App, turn: Turn) -> tuple[Encoder, bytes]: ...  # encoder and its opening bytes


def _options(route: ModelRoute) -> dict[str, Any]:
    e = route.entry
    return {"upstream_model": route.targets[0].upstream_model if route.targets else route.public_id,
            "default_max_tokens": e.default_max_tokens, "max_output_tokens": e.max_output_tokens,
            "exclusive_temperature_top_p": e.exclusive_temperature_top_p,
            "rejects_sampling_params": e.rejects_sampling_params, "thinking_types": tuple(e.thinking)}


def _auto_cache(app: App, route: ModelRoute, key: KeyRecord) -> bool:
    c = app.settings.caching
    return c.auto and route.entry.auto_cache and key.name not in c.off_for_keys


class ChatDialect:
    api, endpoint = "openai-chat", "chat/completions"

    def to_anthropic(self, app: App, turn: Turn, route: ModelRoute) -> tuple[dict[str, Any], list[str]]:
        return openai_chat.to_anthropic(turn.body, openai_chat.ChatOptions(**_options(route)))

    def from_anthropic(self, app: App, turn: Turn, message: dict[str, Any]) -> dict[str, Any]:
        return openai_chat.from_anthropic(message, model=turn.model, created=turn.created)

    def encoder(self, app: App, turn: Turn) -> tuple[Encoder, bytes]:
        opts = turn.body.get("stream_options")
        include = bool(opts.get("include_usage")) if isinstance(opts, dict) else False
        return openai_chat.ChatStreamEncoder(model=turn.model, created=turn.created, include_usage=include), b""


def responses_options(route: ModelRoute, key: KeyRecord) -> openai_responses.ResponsesOptions:
    return openai_responses.ResponsesOptions(**_options(route), key_id=str(key.id))


class ResponsesDialect:
    """A request whose last input item is `compaction_trigger` (Codex compacting) is answered by a Claude
    summary in one compaction item (dialects/openai_responses/compaction.py)."""

    api, endpoint = "openai-responses", "responses"

    def to_anthropic(self, app: App, turn: Turn, route: ModelRoute) -> tuple[dict[str, Any], list[str]]:
        opts = responses_options(route, turn.key)
        if compaction.is_trigger(turn.body):
            return compaction.summary_request(turn.body, opts, app.envelope)
        return openai_responses.to_anthropic(turn.body, opts, app.envelope)

    def from_anthropic(self, app: App, turn: Turn, message: dict[str, Any]) -> dict[str, Any]:
        answer = compaction.trigger_response if compaction.is_trigger(turn.body) else openai_responses.from_anthropic
        return answer(message, model=turn.model, created=turn.created, envelope=app.envelope,
                      key_id=str(turn.key.id), request=turn.body)

    def encoder(self, app: App, turn: Turn) -> tuple[Encoder, bytes]:
        cls = compaction.CompactionStreamEncoder if compaction.is_trigger(turn.body) else (
            openai_responses.ResponsesStreamEncoder)
        enc = cls(model=turn.model, created=turn.created, envelope=app.envelope, key_id=str(turn.key.id),
                  request=turn.body)
        return enc, enc.start()


CHAT, RESPONSES = ChatDialect(), ResponsesDialect()


def register(app: App) -> None:
    app.envelope = openai_responses.ReasoningEnvelope(app.secret)  # type: ignore[attr-defined]
    for path in ("/v1/chat/completions", "/v2/router/chat/completions", "/v2/chat/completions"):
        app.routes[("POST", path)] = chat_completions
    app.routes[("POST", "/v1/responses")] = responses


class TranslatingPlan(OpenAIPlan):
    """Chat Completions or Responses through the Anthropic hub; a non-Claude model hands over to the relay."""

    def __init__(self, app: App, req: Request, dialect: Dialect) -> None:
        super().__init__(app, req, dialect.api, dialect.endpoint)
        self.dialect = dialect

    async def parse(self, ex: Exchange, raw: bytes) -> OpenAIPlan:
        body = self.req.json()
        route = self.app.pipeline.resolve(ex, body.get("model"))
        if openai_passthrough.handles(route):  # a non-Claude model on an OpenAI-compatible provider: relayed
            relay = openai_passthrough.RelayPlan(self.app, self.req, self.api, self.endpoint).parsed(body, raw)
            return await relay.parse(ex, raw)
        assert ex.key is not None
        if self.dialect is RESPONSES and body.get("previous_response_id"):  # the stored conversation goes first
            body = await self.app.response_store.expand(ex.key, body)
            raw = orjson.dumps(body)  # the budget's worst case is bounded by what is actually sent
        self.body, self.raw = body, raw
        return self

    async def prepare(self, ex: Exchange, raw: bytes) -> Budget:
        app, route = self.app, ex.route
        assert ex.model is not None and ex.key is not None and route is not None
        self.fallbacks = request_fallbacks(app, self.body)
        self.turn = Turn(self.body, ex.model, ex.key, int(time.time()))
        self.abody, self.betas = self.dialect.to_anthropic(app, self.turn, route)
        if _auto_cache(app, route, ex.key):
            caching.add_breakpoints(self.abody)
        return Budget(self.raw, self.abody["max_tokens"], self.abody)

    async def open(self, ex: Exchange, allowed: int | None) -> Opened:
        abody = self.abody
        if allowed is not None and allowed != abody["max_tokens"]:
            abody = {**abody, "max_tokens": allowed}
        ex.stream = bool(abody.get("stream"))
        assert ex.route is not None
        call = UpstreamCall(target=ex.route.targets[0], body=abody, stream=ex.stream,
                            anthropic_beta=",".join(self.betas) or None)
        return await self.app.pipeline.open(ex, call, affinity_of(self.req.headers, self.body), self.fallbacks)

    async def answer(self, ex: Exchange, opened: Opened) -> None:
        app, turn = self.app, self.turn
        headers = answer_headers(self.req.request_id, opened)
        message = orjson.loads(await opened.response.read())
        ex.first_byte()
        merge_usage(ex.usage, message.get("usage"))
        answer = self.dialect.from_anthropic(app, turn, message)
        if self.dialect is RESPONSES:
            app.response_store.remember(turn.key, turn.body, answer)  # previous_response_id (opt-in)
        await respond(self.req.send, 200, orjson.dumps(answer), headers)

    async def relay(self, ex: Exchange, opened: Opened) -> None:
        app, turn = self.app, self.turn
        headers = answer_headers(self.req.request_id, opened)
        encoder, opening = self.dialect.encoder(app, turn)
        if self.dialect is RESPONSES:
            encoder = app.response_store.watch(encoder, turn.key, turn.body)
        assert opened.chunks is not None
        stage = KeepAlive(self.req.send, app.settings.server.keepalive_seconds, OPENAI_PING)
        try:
            await _translate_stream(stage.send, ex, opened.chunks, opened.response, headers, encoder, opening)
        finally:
            stage.stop()


async def chat_completions(app: App, req: Request) -> None:
    await app.pipeline.serve(req, TranslatingPlan(app, req, CHAT))


async def responses(app: App, req: Request) -> None:
    await app.pipeline.serve(req, TranslatingPlan(app, req, RESPONSES))


async def _translate_stream(send: Any, ex: Exchange, chunks: Any, resp: Any, headers: dict[str, str],
                            encoder: Encoder, opening: bytes) -> None:
    decoder, tee = SSEFramer(), UsageTee()
    ex.first_byte()
    await start_stream(send, headers)
    if opening:
        await send({"type": "http.response.body", "body": opening, "more_body": True})

    def translate(frames: list[tuple[str, bytes]]) -> bytes:
        out = []
        for event, data in frames:
            obj = tee.observe(event, data)  # parsed once, for the tee and the encoder
            if obj is None:  # an event name the tee does not know: its data may still be an event
                try:
                    obj = orjson.loads(data)
                except orjson.JSONDecodeError:
                    continue
            out.append(encoder.feed(obj))
        return b"".join(out)

    try:
        async for chunk in chunks:
            out = translate(decoder.feed(chunk))
            if out:
                await send({"type": "http.response.body", "body": out, "more_body": True})
        tail = translate(decoder.finish()) + encoder.finish()
        await send({"type": "http.response.body", "body": tail, "more_body": False})
    except UpstreamUnavailable as e:
        tee.error = {"type": e.kind}
        await send({"type": "http.response.body", "body": encoder.error(e.kind, e.message, e.status),
                    "more_body": False})
    except MalformedEvent:
        tee.error = {"type": "api_error"}
        await send({"type": "http.response.body", "more_body": False,
                    "body": encoder.error("api_error", "The upstream sent a malformed stream event.", 502)})
    except (ClientGone, asyncio.CancelledError):
        raise
    except Exception:  # headers are out: the dialect's error, then handle() logs it
        tee.error = {"type": "api_error"}
        await end_stream(send, encoder.error("api_error", "Internal server error.", 500))
        raise
    finally:
        await resp.aclose()
        ex.usage = tee.usage
        if tee.error is not None:
            ex.error_type = tee.error.get("type") or "api_error"
