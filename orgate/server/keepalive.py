"""Keep-alive for every stream orgate sends: a stage around the ASGI `send` of a streaming response.

Claude Code warns after ~20 s without a byte and aborts a stream silent for ~300 s; Bedrock and Vertex send
no `ping` while the model thinks, and a translated stream has nothing to send until the upstream speaks.
When no byte has gone to the client for `interval` seconds, this stage sends the dialect's keep-alive:
`event: ping` on Anthropic streams (an event every Anthropic client ignores), an SSE comment on OpenAI
streams (ignored by every SSE parser). Only between two complete SSE frames, so event order is untouched;
usage is read from the upstream's frames, never from what is sent, so accounting is untouched. The
upstream's idle timeout still ends a dead stream: that is the relay's business, not this stage's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

ANTHROPIC_PING = b'event: ping\ndata: {"type": "ping"}\n\n'
OPENAI_PING = b": keep-alive\n\n"

Send = Callable[[dict[str, Any]], Awaitable[None]]


class KeepAlive:
    __slots__ = ("_send", "interval", "ping", "pings", "_lock", "_last", "_boundary", "_open", "_task")

    def __init__(self, send: Send, interval: float, ping: bytes) -> None:
        self._send = send
        self.interval = interval
        self.ping = ping
        self.pings = 0
        self._lock = asyncio.Lock()
        self._last = time.monotonic()
        self._boundary = True  # the bytes sent so far end between two SSE frames
        self._open = False
        self._task: asyncio.Task[None] | None = None

    async def send(self, message: dict[str, Any]) -> None:
        async with self._lock:
            await self._send(message)
            self._last = time.monotonic()
            if message["type"] == "http.response.start":
                self._open = True
                if self.interval > 0:
                    self._task = asyncio.get_running_loop().create_task(self._beat())
                return
            body = message.get("body") or b""
            if body:
                self._boundary = body.endswith((b"\n\n", b"\r\n\r\n", b"\r\r"))
            if not message.get("more_body"):
                self._open = False

    async def _beat(self) -> None:
        while self._open:
            await asyncio.sleep(max(0.05, self._last + self.interval - time.monotonic()))
            if not self._open or time.monotonic() - self._last < self.interval or self._lock.locked():
                continue
            if not self._boundary:  # the upstream stopped inside a frame: wait for it to finish the frame
                self._last = time.monotonic()
                continue
            async with self._lock:
                if not self._open:
                    return
                try:
                    await self._send({"type": "http.response.body", "body": self.ping, "more_body": True})
                except Exception:
                    return  # the client is gone; the relay finds out on its own next send
                self._last = time.monotonic()
                self.pings += 1

    def stop(self) -> None:
        self._open = False
        if self._task is not None:
            self._task.cancel()
