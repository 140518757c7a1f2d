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
    """The stage costs one timer per stream, not a task and a lock: the timer looks at the stream every
    `interval` seconds, and only a ping actually due starts a task to write it. A relay send never waits
    unless a ping is being written at that moment (then it waits for that ping, so frames never interleave),
    and a ping is never written while a relay send is in progress."""

    __slots__ = ("_send", "interval", "ping", "pings", "_last", "_boundary", "_open", "_sending", "_timer",
                 "_pinging")

    def __init__(self, send: Send, interval: float, ping: bytes) -> None:
        self._send = send
        self.interval = interval
        self.ping = ping
        self.pings = 0
        self._last = time.monotonic()
        self._boundary = True  # the bytes sent so far end between two SSE frames
        self._open = False
        self._sending = False
        self._timer: asyncio.TimerHandle | None = None
        self._pinging: asyncio.Task[None] | None = None

    async def send(self, message: dict[str, Any]) -> None:
        if self._pinging is not None:
            await asyncio.wait((self._pinging,))
        self._sending = True
        try:
            await self._send(message)
        finally:
            self._sending = False
        self._last = time.monotonic()
        if message["type"] == "http.response.start":
            self._open = True
            if self.interval > 0:
                self._arm(self.interval)
            return
        body = message.get("body") or b""
        if body:
            self._boundary = body.endswith((b"\n\n", b"\r\n\r\n", b"\r\r"))
        if not message.get("more_body"):
            self.stop()

    def _arm(self, delay: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(max(0.05, delay), self._check)

    def _check(self) -> None:
        self._timer = None
        if not self._open:
            return
        idle = time.monotonic() - self._last
        if idle < self.interval or self._sending:
            self._arm(self.interval - idle)
            return
        if not self._boundary:  # the upstream stopped inside a frame: wait for it to finish the frame
            self._last = time.monotonic()
            self._arm(self.interval)
            return
        self._pinging = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        try:
            await self._send({"type": "http.response.body", "body": self.ping, "more_body": True})
            self._last = time.monotonic()
            self.pings += 1
        except Exception:
            return  # the client is gone; the relay finds out on its own next send
        finally:
            self._pinging = None
        if self._open:
            self._arm(self.interval)

    def stop(self) -> None:
        self._open = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pinging is not None:
            self._pinging.cancel()
