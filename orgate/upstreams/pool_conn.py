"""One upstream connection of the lean client (pool.py): an asyncio Protocol feeding httptools' parser.

It holds the state of the one exchange in flight on it (no pipelining): status, headers, the body bytes
buffered for the reader, whether the message ended, the failure if any, the reader's waiter and the one
timer that bounds the reader's waits. pool_response.Response reads from it; pool.py pools it.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httptools

from orgate.errors import UpstreamUnavailable
from orgate.upstreams.base import is_relayed

INF = float("inf")
HIGH_WATER = 256 * 1024  # body bytes buffered for a slower consumer before the socket stops being read
HEAD_LIMIT = 256 * 1024  # bytes an upstream may send before its headers end
_TOLERANCE = 0.001  # a timer may fire this early (loop clock resolution): not a reason to re-arm
NAMES_MAX = 1024
# A header name as received -> (its lower-case str, relayed?). An upstream sends the same few dozen names on
# every answer: one dict look instead of decode, lower and the relayed test at each (~1,500 instructions a
# header less). Bounded: cleared when an upstream sends more distinct names than that.
_names: dict[bytes, tuple[str, bool]] = {}


def header_name(name: bytes) -> tuple[str, bool]:
    if len(_names) >= NAMES_MAX:
        _names.clear()
    k = name.decode("latin-1").lower()
    hit = _names[name] = (k, is_relayed(k))
    return hit


class Stale(Exception):
    """A reused connection ended before any byte of its response: the server had closed it while idle."""


class Conn(asyncio.Protocol):
    """One upstream connection and the state of the exchange on it (one at a time: no pipelining)."""

    def __init__(self, pool: Any, key: tuple[str, str, int]) -> None:
        self.pool, self.loop, self.key = pool, pool.loop, key
        self.transport: Any = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = self.busy = self.reused = self.paused = False
        self.idle_since = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.begin()
        self.busy = False

    def begin(self) -> None:
        """Start an exchange: a clean slate for the next response."""
        self.busy = True
        self.buf: list[bytes] = []
        self.size = self.head = self.status = 0
        self.headers: dict[str, str] = {}
        self.relay: dict[str, str] = {}  # the headers base.relayed would pick, picked as they are parsed
        self.hdone = self.done = self.got = self.timed_out = self.keep = self.eof_ends = False
        self.exc: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.deadline = INF

    # -- the transport's side --------------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:  # both loops set it already; cheap insurance, once per connection
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, AttributeError):
                pass
        self.pool.live.add(self)

    def data_received(self, data: bytes) -> None:
        if not self.busy:  # bytes on an idle connection: nothing can be trusted on it any more
            self.transport.close()
            return
        self.got = True
        if not self.hdone:
            self.head += len(data)
            if self.head > HEAD_LIMIT:
                self.fail(UpstreamUnavailable("upstream response headers too large"))
                self.transport.close()
                return
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as e:
            self.fail(UpstreamUnavailable(f"upstream sent a malformed response: {e}"))
            self.transport.close()

    def eof_received(self) -> None:
        return None  # close our side too: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.live.discard(self)
        if self.busy and not self.done:
            if self.hdone and self.eof_ends:  # a body delimited by the end of the connection: complete
                self.done = True
                self.wake()
            elif not self.got and self.reused:
                self.fail(Stale())
            else:
                what = "connection lost" if self.hdone else "connection failed"
                self.fail(UpstreamUnavailable(f"upstream {what}: {type(exc).__name__ if exc else 'EOF'}"))

    # -- the parser's callbacks ------------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        if self.done:  # bytes after the end of the response: nothing to keep, and no reuse
            self.keep = False
            return
        # latin-1 maps every byte to one character and back: values are relayed exactly as sent
        k, relay = _names.get(name) or header_name(name)
        self.headers[k] = v = value.decode("latin-1")
        # The client's answer carries a few of them: picked here, where the name is already at hand, rather
        # than by a second pass over every header (base.relayed, ~2,000 instructions a header).
        if relay:
            self.relay[k] = v

    def on_headers_complete(self) -> None:
        if self.done:
            self.keep = False
            return
        self.status = status = self.parser.get_status_code()
        if status < 200:  # an interim answer (100 Continue): the real one follows
            return
        self.hdone = True
        self.keep = self.parser.should_keep_alive()
        h = self.headers
        self.eof_ends = ("content-length" not in h and "chunked" not in h.get("transfer-encoding", "").lower()
                         and status not in (204, 304))
        self.wake()

    def on_body(self, body: bytes) -> None:
        if self.done:
            self.keep = False
            return
        self.buf.append(body)
        self.size += len(body)
        if self.size > HIGH_WATER and not self.paused:  # a slow consumer: stop reading, the socket buffers
            self.paused = True
            self.transport.pause_reading()
        if self.waiter is not None:
            self.wake()

    def on_message_complete(self) -> None:
        if self.done:
            self.keep = False
            return
        if self.status < 200:
            self.headers = {}
            self.relay = {}
            return
        self.done = True
        self.wake()

    # -- the consumer's side ---------------------------------------------------------------------------
    def wake(self) -> None:
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)

    def fail(self, exc: BaseException) -> None:
        if not self.done and self.exc is None:
            self.exc = exc
            self.wake()

    async def wait(self, deadline: float) -> None:
        """Until something happens (headers, body, end, failure) or `deadline` (loop time) passes: then
        `timed_out` is set. One timer per response, moved only when a deadline comes earlier."""
        self.deadline = deadline
        t = self.timer
        if deadline < INF and (t is None or t.when() > deadline):
            if t is not None:
                t.cancel()
            self.timer = self.loop.call_at(deadline, self._on_timer)
        self.waiter = fut = self.loop.create_future()
        await fut

    def _on_timer(self) -> None:
        self.timer = None
        w = self.waiter
        if w is None or w.done() or self.deadline == INF:
            return  # nobody waiting (a slow consumer is no upstream hang): the next wait re-arms
        if self.deadline - self.loop.time() > _TOLERANCE:  # data came since: wait for the later deadline
            self.timer = self.loop.call_at(self.deadline, self._on_timer)
            return
        self.timed_out = True
        self.wake()

    def take(self) -> bytes:
        """The body buffered so far, as one piece; reading resumes if it had stopped."""
        buf = self.buf
        data = buf[0] if len(buf) == 1 else b"".join(buf)
        self.buf = []
        self.size = 0
        if self.paused:
            self.paused = False
            if not self.closed:
                self.transport.resume_reading()
        return data

    def release(self) -> None:
        """The response was read to its end: back to the pool, or closed if it may not be reused. Its timer
        stays: the next exchange's wait finds it pending at an earlier deadline and keeps it (_on_timer moves
        it on to the then current deadline), so a connection in steady use arms about one timer per
        first-byte limit rather than one per request (a TimerHandle made and cancelled: ~1.8 us on uvloop);
        one that fires with nobody waiting just ends."""
        self.busy = False
        if self.keep and self.exc is None and not self.closed:
            self.reused = True
            self.pool.put(self)
        else:
            self.drop()

    def drop(self) -> None:
        """Close: a response cut short (never reuse a half-read connection), a failure, shutdown."""
        self._stop_timer()
        if self.busy and not self.done:  # a reader still waiting (app shutdown) fails rather than hangs
            self.fail(UpstreamUnavailable("upstream connection closed"))
        self.busy = False
        if not self.closed:
            self.closed = True
            self.pool.live.discard(self)
            self.transport.close()

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
