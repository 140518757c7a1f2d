"""A faithful fake of Anthropic's Messages API: a real HTTP server on an ephemeral port, scripted per test.

It speaks the documented wire format (api-reference §A.9-A.13): JSON messages, SSE streams with
message_start / content_block_* / ping / message_delta / message_stop, input_json_delta fragments,
thinking_delta + signature_delta, redacted thinking, cache usage in message_start and message_delta,
errors before the stream and as `error` events mid-stream, a slow first byte, a dropped connection.
It checks the provider credential and records every request for assertions.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiohttp import ClientConnectionError, web

from tests.fakes.prompt_cache import PromptCache, TooManyBreakpoints

UPSTREAM_KEY = "sk-upstream-test-credential"


@dataclass
class Reply:
    """What the fake answers with. `blocks` are Anthropic content blocks as they would finish."""

    blocks: list[dict[str, Any]] = field(default_factory=lambda: [{"type": "text", "text": "Hello! I am Claude."}])
    stop_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=lambda: {"input_tokens": 12, "output_tokens": 9})
    status: int = 200
    error_type: str | None = None
    error_message: str = "error"
    headers: dict[str, str] = field(default_factory=dict)
    mid_stream_error: str | None = None  # error type sent as an `error` event after the first block
    drop_after_events: int | None = None  # close the connection after N events
    first_byte_delay: float = 0.0
    event_delay: float = 0.0
    inject: dict[int, bytes] = field(default_factory=dict)  # raw bytes written before event N (hostile upstream)


Script = Reply | Callable[[dict[str, Any]], Reply]


def text(t: str, **kw: Any) -> Reply:
    return Reply(blocks=[{"type": "text", "text": t}], **kw)


def tool_use(name: str, input: dict[str, Any], pre_text: str | None = None, **kw: Any) -> Reply:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": pre_text}] if pre_text else []
    blocks.append({"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:24], "name": name, "input": input})
    return Reply(blocks=blocks, stop_reason="tool_use", **kw)


def error(status: int, kind: str, message: str = "error", **kw: Any) -> Reply:
    return Reply(status=status, error_type=kind, error_message=message, **kw)


def _stop_reason(r: Reply) -> str:
    if r.stop_reason:
        return r.stop_reason
    return "tool_use" if any(b["type"] == "tool_use" for b in r.blocks) else "end_turn"


def _message(r: Reply, model: str, msg_id: str, usage: dict[str, Any], content: list[Any]) -> dict[str, Any]:
    return {"id": msg_id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": None, "stop_sequence": None, "usage": usage}


def _chunks(s: str, n: int) -> list[str]:
    return [s[i : i + n] for i in range(0, len(s), n)] or [""]


def stream_events(r: Reply, model: str) -> list[tuple[str, dict[str, Any]]]:
    msg_id = "msg_" + uuid.uuid4().hex[:24]
    u = dict(r.usage)
    start_usage = {k: v for k, v in u.items() if k != "output_tokens"}
    start_usage["output_tokens"] = 1
    ev: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start",
                                                                 "message": _message(r, model, msg_id, start_usage, [])})]
    for i, b in enumerate(r.blocks):
        t = b["type"]
        if t == "text":
            ev.append(("content_block_start", {"type": "content_block_start", "index": i,
                                               "content_block": {"type": "text", "text": ""}}))
            if i == 0:
                ev.append(("ping", {"type": "ping"}))
            for part in _chunks(b["text"], 7):
                ev.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "text_delta", "text": part}}))
        elif t == "tool_use":
            ev.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block":
                                               {"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}}))
            js = orjson.dumps(b["input"]).decode()
            for part in ["", *_chunks(js, 9)]:
                ev.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "input_json_delta", "partial_json": part}}))
        elif t == "thinking":
            ev.append(("content_block_start", {"type": "content_block_start", "index": i,
                                               "content_block": {"type": "thinking", "thinking": "", "signature": ""}}))
            for part in _chunks(b["thinking"], 11):
                ev.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "thinking_delta", "thinking": part}}))
            ev.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                               "delta": {"type": "signature_delta", "signature": b["signature"]}}))
        else:  # redacted_thinking and server-tool results arrive complete at start
            ev.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": b}))
        ev.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
        if r.mid_stream_error and i == 0:
            ev.append(("error", {"type": "error", "error": {"type": r.mid_stream_error, "message": "Overloaded"}}))
            return ev
    delta_usage = {"output_tokens": u.get("output_tokens", 0)}
    for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        if k in u:
            delta_usage[k] = u[k]
    ev.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": _stop_reason(r),
                                                                   "stop_sequence": None}, "usage": delta_usage}))
    ev.append(("message_stop", {"type": "message_stop"}))
    return ev


class FakeAnthropic:
    def __init__(self, api_key: str = UPSTREAM_KEY) -> None:
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.script: deque[Script] = deque()
        self.default: Script = Reply()
        self.count_tokens_value: int | None = None
        # The prompt cache every request goes through (documented semantics, tests/fakes/prompt_cache.py).
        # Its usage replaces the scripted input-side usage only when `cache_usage` is on.
        self.cache = PromptCache()
        self.cache_usage = False
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.open_streams = 0
        self.closed_streams = 0

    # -- scripting -----------------------------------------------------------------------------------
    def push(self, *replies: Script) -> None:
        self.script.extend(replies)

    def reset(self) -> None:
        self.requests.clear()
        self.script.clear()
        self.default = Reply()
        self.count_tokens_value = None
        self.cache = PromptCache()
        self.cache_usage = False

    def _next(self, body: dict[str, Any]) -> Reply:
        s = self.script.popleft() if self.script else self.default
        return s(body) if callable(s) else s

    @property
    def last(self) -> dict[str, Any]:
        return self.requests[-1]

    # -- server --------------------------------------------------------------------------------------
    def start(self) -> str:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_post("/v1/messages", self._messages)
            app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
            self._runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)
        return self.url

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)

    def _record(self, request: web.Request, raw: bytes) -> dict[str, Any]:
        body = orjson.loads(raw)
        rec = {"path": request.path_qs, "headers": {k.lower(): v for k, v in request.headers.items()},
               "raw": raw, "body": body}
        self.requests.append(rec)
        return rec

    def _auth_error(self, request: web.Request) -> web.Response | None:
        if request.headers.get("x-api-key") != self.api_key:
            return web.json_response({"type": "error", "error": {"type": "authentication_error",
                                                                 "message": "invalid x-api-key"}}, status=401)
        if not request.headers.get("anthropic-version"):
            return web.json_response({"type": "error", "error": {"type": "invalid_request_error",
                                                                 "message": "anthropic-version: header is required"}}, status=400)
        return None

    async def _count_tokens(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self._record(request, raw)
        if (err := self._auth_error(request)) is not None:
            return err
        n = self.count_tokens_value if self.count_tokens_value is not None else max(1, len(raw) // 4)
        return web.json_response({"input_tokens": n}, headers={"request-id": "req_fakecount"})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        rec = self._record(request, raw)
        if (err := self._auth_error(request)) is not None:
            return err
        body = rec["body"]
        try:
            cached = self.cache.usage(body)
        except TooManyBreakpoints as e:
            return web.json_response({"type": "error", "error": {"type": "invalid_request_error", "message": str(e)}},
                                     status=400)
        r = self._next(body)
        if self.cache_usage:
            r = replace(r, usage={**r.usage, **cached})
        mt = body.get("max_tokens")
        if isinstance(mt, int) and r.usage.get("output_tokens", 0) > mt:
            # like the real API: generation stops at max_tokens, and so does the billed output
            r = replace(r, usage={**r.usage, "output_tokens": mt}, stop_reason="max_tokens")
        upstream_id = "req_fake" + uuid.uuid4().hex[:16]
        headers = {"request-id": upstream_id, **r.headers}
        if r.first_byte_delay:
            await asyncio.sleep(r.first_byte_delay)
        if r.status != 200:
            return web.json_response({"type": "error", "error": {"type": r.error_type, "message": r.error_message},
                                      "request_id": upstream_id}, status=r.status, headers=headers)
        model = body.get("model", "claude")
        if not body.get("stream"):
            msg = _message(r, model, "msg_" + uuid.uuid4().hex[:24], r.usage, r.blocks)
            msg["stop_reason"] = _stop_reason(r)
            return web.json_response(msg, headers=headers, dumps=lambda o: orjson.dumps(o).decode())
        resp = web.StreamResponse(status=200, headers={"content-type": "text/event-stream", **headers})
        await resp.prepare(request)
        self.open_streams += 1
        try:
            for n, (name, data) in enumerate(stream_events(r, model)):
                if r.drop_after_events is not None and n >= r.drop_after_events:
                    request.transport.close()  # type: ignore[union-attr]
                    return resp
                if n in r.inject:
                    await resp.write(r.inject[n])
                await resp.write(b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n")
                if r.event_delay:
                    await asyncio.sleep(r.event_delay)
            await resp.write_eof()
        except (ConnectionError, ClientConnectionError):
            self.closed_streams += 1  # the gateway closed the upstream connection mid-stream
        except asyncio.CancelledError:
            self.closed_streams += 1
            raise
        return resp
