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
from collections.abc import Awaitable, Callable
from typing import Any

ANTHROPIC_PING = b'event: ping\ndata: {"type": "ping"}\n\n'
OPENAI_PING = b": keep-alive\n\n"

Send = Callable[[dict[str, Any]], Awaitable[None]]


TICKS = 4  # checks per interval: a ping goes out after 4 quiet checks, 1 to 1.25 intervals after the last byte
MIN_TICK = 0.0125


class _Ticker:
    """One timer per event loop and interval for every open stream, instead of a timer per stream (created,
    moved and cancelled by each stream): a stream only joins and leaves a set. Every interval/TICKS it asks
    each stream whether it has been quiet for TICKS checks; it stops when no stream is left."""

    __slots__ = ("loop", "key", "period", "stages", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self.loop = loop
        self.key = (loop, interval)
        self.period = max(MIN_TICK, interval / TICKS)
        self.stages: set[KeepAlive] = set()
        self.timer: asyncio.TimerHandle | None = None

    def add(self, stage: KeepAlive) -> None:
        self.stages.add(stage)
        if self.timer is None:
            self.timer = self.loop.call_later(self.period, self._tick)

    def _tick(self) -> None:
        if not self.stages:
            self.timer = None
            if _tickers.get(self.key) is self:
                del _tickers[self.key]
            return
        for stage in list(self.stages):
            stage._tick()
        self.timer = self.loop.call_later(self.period, self._tick)


_tickers: dict[tuple[asyncio.AbstractEventLoop, float], _Ticker] = {}


def _ticker(interval: float) -> _Ticker:
    loop = asyncio.get_running_loop()
    t = _tickers.get((loop, interval))
    if t is None:
        for key in [k for k in _tickers if k[0].is_closed()]:  # tests run many loops in one process
            del _tickers[key]
        t = _tickers[(loop, interval)] = _Ticker(loop, interval)
    return t


class KeepAlive:
    """The stage costs a set entry per stream, not a timer, a task or a lock: a shared ticker looks at the
    stream TICKS times per `interval`, and only a ping actually due starts a task to write it. A relay send
    never waits unless a ping is being written at that moment (then it waits for that ping, so frames never
    interleave), and a ping is never written while a relay send is in progress. A send counts itself
    (`_sent`) rather than reading the clock: the ticker sees whether the count moved since its last look."""

    __slots__ = ("_send", "interval", "ping", "pings", "_sent", "_seen", "_quiet", "_boundary", "_open",
                 "_sending", "_ticker", "_pinging")

    def __init__(self, send: Send, interval: float, ping: bytes) -> None:
        self._send = send
        self.interval = interval
        self.ping = ping
        self.pings = 0
        self._sent = self._seen = self._quiet = 0
        self._boundary = True  # the bytes sent so far end between two SSE frames
        self._open = False
        self._sending = False
        self._ticker: _Ticker | None = None
        self._pinging: asyncio.Task[None] | None = None

    async def send(self, message: dict[str, Any]) -> None:
        if self._pinging is not None:
            await asyncio.wait((self._pinging,))
        self._sending = True
        try:
            await self._send(message)
        finally:
            self._sending = False
        self._sent += 1
        if message["type"] == "http.response.start":
            self._open = True
            if self.interval > 0:
                self._ticker = _ticker(self.interval)
                self._ticker.add(self)
            return
        body = message.get("body")
        if body:
            self._boundary = body.endswith((b"\n\n", b"\r\n\r\n", b"\r\r"))
        if not message.get("more_body"):
            self.stop()

    def _tick(self) -> None:
        """The ticker's look: a ping when nothing was sent for TICKS looks and the stream is between frames."""
        if self._pinging is not None:
            return
        if self._sent != self._seen or self._sending:
            self._seen = self._sent
            self._quiet = 0
            return
        self._quiet += 1
        if self._quiet < TICKS:
            return
        self._quiet = 0  # also when the upstream stopped inside a frame: wait another interval for its end
        if self._boundary:
            assert self._ticker is not None
            self._pinging = self._ticker.loop.create_task(self._beat())

    async def _beat(self) -> None:
        try:
            await self._send({"type": "http.response.body", "body": self.ping, "more_body": True})
            self.pings += 1
        except Exception:
            return  # the client is gone; the relay finds out on its own next send
        finally:
            self._pinging = None

    def stop(self) -> None:
        self._open = False
        if self._ticker is not None:
            self._ticker.stages.discard(self)
            self._ticker = None
        if self._pinging is not None:
            self._pinging.cancel()
