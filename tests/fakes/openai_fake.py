"""A tiny OpenAI Chat Completions server (real HTTP): `POST /v1/chat/completions`, JSON or SSE.

It checks the bearer key, answers with scripted content, puts usage in the JSON answer and, only when
`stream_options.include_usage` is true, in a final chunk with `choices: []` (as OpenAI does, with
`"usage": null` on the other chunks). Scripted errors come back in OpenAI's error shape; `drop_after_chunks`
closes the connection mid-stream. Runs on its own thread and loop so a gateway subprocess can reach it.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Chat:
    text: str = "Hello from the OpenAI fake."
    usage: dict[str, Any] = field(default_factory=lambda: {
        "prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28,
        "prompt_tokens_details": {"cached_tokens": 4}})
    status: int = 200
    error_type: str = "invalid_request_error"
    error_message: str = "scripted error"
    headers: dict[str, str] = field(default_factory=dict)
    drop_after_chunks: int | None = None
    delay: float = 0.0  # seconds before answering


class OpenAIFake:
    def __init__(self, api_key: str = "sk-openai-fake") -> None:
        self.api_key = api_key
        self.script: deque[Chat] = deque()
        self.requests: list[dict[str, Any]] = []
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> OpenAIFake:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self.chat)
            self._runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw)
        self.requests.append({"headers": dict(request.headers), "body": body, "raw": raw})
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(401, "invalid_request_error", "Incorrect API key provided", code="invalid_api_key")
        reply = self.script.popleft() if self.script else Chat()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200:
            return self._error(reply.status, reply.error_type, reply.error_message, headers=reply.headers)
        cid, created, model = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time()), body["model"]
        if not body.get("stream"):
            return web.json_response({
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                             "finish_reason": "stop", "logprobs": None}],
                "usage": reply.usage}, headers=reply.headers)
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", **reply.headers})
        await resp.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            c: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if include:
                c["usage"] = None
            return c

        chunks = [chunk({"role": "assistant", "content": ""}, None)]
        chunks += [chunk({"content": reply.text[i : i + 6]}, None) for i in range(0, len(reply.text), 6)]
        chunks.append(chunk({}, "stop"))
        if include:
            chunks.append({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": [], "usage": reply.usage})
        for n, c in enumerate(chunks):
            if reply.drop_after_chunks is not None and n >= reply.drop_after_chunks:
                request.transport.close()  # type: ignore[union-attr]
                return resp
            await resp.write(b"data: " + orjson.dumps(c) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    @staticmethod
    def _error(status: int, kind: str, message: str, code: str | None = None,
               headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response({"error": {"message": message, "type": kind, "param": None, "code": code}},
                                 status=status, headers=headers)
