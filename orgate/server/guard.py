"""Reading limits uvicorn's httptools protocol lacks: header size and count, time to headers, body rate,
and a connection cap with a clear refusal.

uvicorn bounds a request's header only in its pure-Python h11 protocol (`h11_max_incomplete_event_size`),
which would cost the hot path; with httptools a 100 MB header is buffered whole. It closes idle connections
only between requests (`timeout_keep_alive`), so a connection that never finishes its headers or body stays
forever, and `limit_concurrency` counts connections but answers only once a request arrives. This subclass
adds, per connection and without touching the request path:

- header bytes (request line + headers) counted as they arrive, refused with 431 past `max_header_bytes`,
  before httptools buffers more; more than `max_headers` header lines: 431;
- headers not complete within `header_timeout_seconds` (75-100% of it, spread) of the connection or of the
  request's first byte: 408;
- a body arriving slower than `body_min_bytes_per_second` over a `body_window_seconds` window (idle
  included) while the application waits for it: 408 and close (the handler sees a disconnect);
- past `max_connections` open connections, a new one is answered 503 with `retry-after` and closed at once,
  so the process never runs out of file descriptors and idle sockets cannot starve normal requests.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httptools
import orjson
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from orgate.config import ServerSettings
from orgate.errors import STATUS_KIND
from orgate.server.cycle import Corked, Cycle


@dataclass(frozen=True)
class ReadLimits:
    max_header_bytes: int = 64 * 1024
    max_headers: int = 200
    header_timeout_seconds: float = 10.0
    body_min_bytes_per_second: int = 1024
    body_window_seconds: float = 10.0
    max_connections: int = 4096


class Refused(Exception):
    def __init__(self, status: int, message: str, headers: bytes = b"") -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def refusal(status: int, message: str, headers: bytes = b"") -> bytes:
    """A complete HTTP/1.1 error response that closes the connection (Anthropic's error shape)."""
    body = orjson.dumps({"type": "error", "error": {"type": STATUS_KIND.get(status, "invalid_request_error"),
                                                    "message": message}})
    return b"".join([STATUS_LINE[status], b"content-type: application/json\r\n",
                     b"content-length: %d\r\n" % len(body), b"connection: close\r\n", headers, b"\r\n", body])


def watch_disconnect(receive: Any, callback: Any) -> bool:
    """Have `callback` called when the client of this request disconnects before the response is complete;
    False when the server is not orgate's (the caller then watches `receive` itself)."""
    cycle = getattr(receive, "__self__", None)
    if not isinstance(cycle, Cycle):
        return False
    cycle.on_disconnect = callback
    return True


def write_now(receive: Any) -> Callable[[], None] | None:
    """What writes this request's response so far at once instead of at the end of the event loop's turn
    (server/cycle.Corked), when it is the only request in flight on orgate's server: a relay calls it after
    a stream's first frame when more of the same chunk is still to be checked. None under concurrency (the
    turn is shared with other requests: their writes and this one's stay corked into one per connection)
    and on another ASGI server (which writes each message as it comes)."""
    cycle = getattr(receive, "__self__", None)
    if isinstance(cycle, Cycle) and len(cycle.inflight) <= 1:
        return cycle.transport.flush  # type: ignore[no-any-return]
    return None


def unwatch_disconnect(receive: Any) -> None:
    cycle = getattr(receive, "__self__", None)
    if isinstance(cycle, Cycle):
        cycle.on_disconnect = None


class GuardedHttpTools(HttpToolsProtocol):
    limits = ReadLimits()

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._in_head = True
        self._head_bytes = 0
        self._tail = b""
        self._header_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_bytes = 0
        self._body_seen = 0
        self._body_pending = False

    # -- connection ------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(Refused(503, "Too many open connections; retry shortly.",
                                 b"retry-after: 1\r\nx-should-retry: true\r\n"))
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        cycle = self.cycle
        super().connection_lost(exc)
        if cycle is not None and cycle.disconnected:
            callback = getattr(cycle, "on_disconnect", None)
            if callback is not None:
                cycle.on_disconnect = None
                callback()

    def data_received(self, data: bytes) -> None:
        # uvicorn's data_received, with refusals raised from parser callbacks answered as such (httptools
        # wraps a callback's exception in HttpParserCallbackError, which uvicorn would answer 400).
        if self._in_head and not self._head_fits(data):
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()  # orgate serves no websockets
        except httptools.HttpParserError as e:
            if isinstance(e.__context__, Refused):
                self._refuse(e.__context__)
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        # Timers only for what this read left incomplete: most requests arrive whole in one read, and then
        # neither the header timer nor the body timer is ever armed (two timers fewer per request).
        if self._in_head:
            if self._head_bytes:
                self._arm_head_timer()
        elif self._body_pending and self._body_timer is None:
            self._body_timer = self.loop.call_later(self.limits.body_window_seconds, self._check_body)

    def _head_fits(self, data: bytes) -> bool:
        """Count bytes up to the end of the headers; refuse before httptools buffers past the limit."""
        seen = self._tail + data
        end = seen.find(b"\r\n\r\n")
        used = self._head_bytes + (len(data) if end < 0 else end + 4 - len(self._tail))
        if used > self.limits.max_header_bytes:
            self._refuse(Refused(431, f"Request headers are larger than {self.limits.max_header_bytes} bytes."))
            return False
        self._head_bytes += len(data)
        self._tail = seen[-3:]
        return True

    # -- parser callbacks ------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            raise Refused(431, f"More than {self.limits.max_headers} request headers.")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._body_bytes = self._body_seen = 0
        self._body_pending = True
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None:
            cycle.__class__ = Cycle  # see Cycle: the same object, two savings per request
            cycle.transport = Corked(self.transport, self.loop)
            cycle.inflight = self.tasks

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        cycle = self.cycle
        if cycle.body or cycle.response_complete or self.parser.should_upgrade():
            if type(cycle.body) is bytes:  # a second chunk: gathered in uvicorn's bytearray from here on
                cycle.body = bytearray(cycle.body)
            super().on_body(body)
            return
        # The first chunk is kept as the bytes httptools made: uvicorn would copy it into its bytearray and
        # `receive` copy it out again (`bytes(bytearray)`), two copies of a 150 KB body per request, where
        # `bytes(bytes)` is the same object. Most bodies arrive in one read, and then are never copied here.
        cycle.body = body  # type: ignore[assignment]
        if len(body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()

    def on_message_complete(self) -> None:
        self._body_pending = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._in_head, self._head_bytes, self._tail = True, 0, b""
        super().on_message_complete()

    # -- timers ----------------------------------------------------------------------------------------
    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            # Spread over the last quarter of the limit: a thousand idle sockets opened together are then not
            # all closed (and reopened by their owner) in one burst that would stall the loop for everyone.
            delay = self.limits.header_timeout_seconds * random.uniform(0.75, 1.0)
            self._head_timer = self.loop.call_later(delay, self._head_timeout)

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self._in_head:
            self._refuse(Refused(408, "Request headers not received in time."))

    def _check_body(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.more_body or self.transport.is_closing():
            return
        waiting = self.flow.read_paused or cycle.waiting_for_100_continue  # the application is not reading
        need = self.limits.body_min_bytes_per_second * self.limits.body_window_seconds
        if not waiting and self._body_bytes - self._body_seen < need:
            self._refuse(Refused(408, "Request body arrived too slowly."), started=cycle.response_started)
            return
        self._body_seen = self._body_bytes
        self._body_timer = self.loop.call_later(self.limits.body_window_seconds, self._check_body)

    def _cancel_timers(self) -> None:
        for t in (self._head_timer, self._body_timer):
            if t is not None:
                t.cancel()
        self._head_timer = self._body_timer = None

    def _refuse(self, r: Refused, started: bool = False) -> None:
        self._cancel_timers()
        if self.transport.is_closing():
            return
        if not started:
            self.transport.write(refusal(r.status, r.message, r.headers))
        self.transport.close()


FD_HEADROOM = 256  # descriptors kept for the database pool, Redis, upstream connections and files


def read_limits(s: ServerSettings) -> ReadLimits:
    """The limits from settings, with the connection cap fitted to the file limit (first raised to its hard
    maximum): past the file limit `accept` fails and every new client, normal or not, is turned away."""
    cap = s.max_connections
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        if soft != resource.RLIM_INFINITY:
            cap = min(cap, max(16, soft - FD_HEADROOM))
    except (ImportError, ValueError, OSError):
        pass
    return ReadLimits(s.max_header_bytes, s.max_headers, s.header_timeout_seconds, s.body_min_bytes_per_second,
                      s.body_window_seconds, cap)


def guarded_protocol(limits: ReadLimits) -> type[GuardedHttpTools]:
    """The protocol class to hand uvicorn (`http=`), bound to these limits."""
    return type("GuardedHttpTools", (GuardedHttpTools,), {"limits": limits})
