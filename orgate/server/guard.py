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
  so the process never runs out of file descriptors and idle sockets cannot starve normal requests;
- request bodies held at once bounded by `max_buffered_body_bytes` (server/intake.py): past it, a connection
  about to start a request waits, unread, until bodies are let go.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any
from urllib.parse import unquote

import httptools
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT, service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from orgate.server.cycle import Corked, Cycle, let_go, unwatch_disconnect, watch_disconnect, write_now
from orgate.server.intake import MIN_ESTIMATE, BodyBudget, Reader
from orgate.server.read_limits import ReadLimits, Refused, read_limits, refusal

# The application's side of the cycle (disconnect watching, write_now, let_go) lives with the Cycle; imported
# from here by the surfaces and the tests as before.
__all__ = ["GuardedHttpTools", "ReadLimits", "Refused", "guarded_protocol", "let_go", "read_limits", "refusal",
           "unwatch_disconnect", "watch_disconnect", "write_now"]

KEEP_ALIVE_SLACK = 0.005  # an idle connection this close to its timeout is closed now (uvloop's clock ticks in ms)


class GuardedHttpTools(HttpToolsProtocol):
    limits = ReadLimits()
    budget: BodyBudget  # set by guarded_protocol, one per process

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
        self._parking = False
        self._parked: bytes | None = None
        self._estimate = 0  # charged to the budget while a let-in connection's headers are not read yet
        self._idle_at: float | None = None  # when the last response ended, while the connection waits idle

    # -- connection ------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # One per connection, not per request: a connection's responses are written one after another, and
        # what one leaves corked is flushed before the next starts (Cycle._body flushes the complete answer).
        self._corked = Corked(transport, self.loop)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(Refused(503, "Too many open connections; retry shortly.",
                                 b"retry-after: 1\r\nx-should-retry: true\r\n"))
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        cycle = self.cycle
        super().connection_lost(exc)
        self._let_go_all(cycle)
        if cycle is not None and cycle.disconnected:
            callback = getattr(cycle, "on_disconnect", None)
            if callback is not None:
                cycle.on_disconnect = None
                callback()

    # -- reads (server/intake.py): the loop reads into the loop-wide buffer, or one byte when parking -----
    def get_buffer(self, sizehint: int) -> Any:
        budget = self.budget
        if budget.held >= budget.limit and self._in_head and not self._head_bytes:
            self._parking = True  # a new request while the budget is spent: read one byte, then wait
            return budget.peek
        return budget.view

    def data_received(self, data: bytes) -> None:
        self.buffer_updated(len(data), data)

    def _park(self) -> None:
        self._parking = False
        first = bytes(self.budget.peek)
        if first != b"P":  # not POST, PUT or PATCH: no body to speak of, read on (health checks, console)
            self.buffer_updated(1, first)
            return
        self._parked = first
        self._cancel_timers()  # the wait is the server's, not the client's: no header timeout while parked
        self._unset_keepalive_if_required()
        self.transport.pause_reading()
        self.budget.park(self, self.loop.time())

    def unpark(self, estimate: int) -> None:
        """Let in by the budget (charged `estimate` until the headers say the body's size)."""
        self._estimate = estimate
        self.loop.call_soon(self._resume)  # not inside whichever request's send let bodies go

    def _resume(self) -> None:
        data, self._parked = self._parked, None
        if data is None or self.transport.is_closing():
            return
        self.buffer_updated(1, data)
        self.transport.resume_reading()

    def _let_go_all(self, cycle: Any) -> None:
        """The connection is gone: whatever its requests were charged leaves the budget."""
        if isinstance(cycle, Cycle):
            cycle.let_go()
        for queued, _ in self.pipeline:
            if isinstance(queued, Cycle):
                queued.let_go()
        if self._estimate:
            self._estimate, estimate = 0, self._estimate
            self.budget.refund(estimate)
        if self._parked is not None:
            self._parked = None
            self.budget.forget(self)

    def buffer_updated(self, nbytes: int, data: bytes | None = None) -> None:
        # uvicorn's data_received of the loop's read into the loop-wide buffer (or of `data`), with refusals
        # raised from parser callbacks answered as such (httptools wraps a callback's exception in
        # HttpParserCallbackError, which uvicorn would answer 400).
        if data is None:
            if self._parking:
                self._park()
                return
            buf: Any = self.budget.buffer
            if self._in_head and not self._head_fits(buf, nbytes):
                return
            data = self.budget.view[:nbytes]  # type: ignore[assignment]
        elif self._in_head and not self._head_fits(data, nbytes):
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

    def _head_fits(self, buf: Any, n: int) -> bool:
        """Count bytes up to the end of the headers; refuse before httptools buffers past the limit. `buf`'s
        first `n` bytes are this read (the loop-wide buffer is searched in place, never copied)."""
        tail = self._tail
        used = -1
        if tail:  # the end of the headers may straddle this read and the last
            end = (tail + bytes(buf[:3])).find(b"\r\n\r\n")
            if end >= 0:
                used = end + 4 - len(tail)
        if used < 0:
            end = buf.find(b"\r\n\r\n", 0, n)
            used = n if end < 0 else end + 4
        if self._head_bytes + used > self.limits.max_header_bytes:
            self._refuse(Refused(431, f"Request headers are larger than {self.limits.max_header_bytes} bytes."))
            return False
        self._head_bytes += n
        if used == n:  # the headers may go on in the next read (their end may straddle it)
            self._tail = (tail + bytes(buf[max(0, n - 3):n]))[-3:]
        return True

    # -- parser callbacks ------------------------------------------------------------------------------
    # uvicorn's on_message_begin, on_headers_complete, on_message_complete and on_response_complete are done
    # here in one call each (no super() frames), as uvicorn 0.55 does them; tests/hardening/test_protocol_parity
    # compares the scope and the cycle with uvicorn's own so that an upgrade changing them is seen.
    def on_message_begin(self) -> None:
        self.url = b""
        self.expect_100_continue = False
        self._header_count = 0
        headers: list[tuple[bytes, bytes]] = []
        self.headers = headers
        self.scope = {  # type: ignore[typeddict-item]
            "type": "http", "asgi": {"version": self.asgi_version, "spec_version": "2.3"}, "http_version": "1.1",
            "server": self.server, "client": self.client, "scheme": self.scheme, "root_path": self.root_path,
            "headers": headers, "state": self.app_state.copy(),
        }

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            raise Refused(431, f"More than {self.limits.max_headers} request headers.")
        # uvicorn's on_header, inline: one Python call per header instead of two, before every first byte.
        # llhttp keeps a value's trailing whitespace, which RFC 9110 (5.5) excludes from it (uvicorn 0.55 too).
        name = name.lower()
        value = value.rstrip(b" \t")
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._body_bytes = self._body_seen = 0
        self._body_pending = True
        parser, scope = self.parser, self.scope
        http_version = parser.get_http_version()
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        if parser.should_upgrade() and self._should_upgrade():
            return
        url = httptools.parse_url(self.url)
        raw_path = url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        root = self.root_path
        scope["path"] = root + path
        scope["raw_path"] = root.encode("ascii") + raw_path if root else raw_path
        scope["query_string"] = url.query or b""
        app = self.app
        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            app = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        declared = 0
        for name, value in self.headers:
            if name == b"content-length":
                declared = int(value) if value.isdigit() else 0
                break
        previous = self.cycle
        cycle = self.cycle = Cycle.__new__(Cycle)  # uvicorn's state, set without its 11-argument __init__
        cycle.scope = scope
        cycle.transport = self._corked
        cycle.flow = self.flow
        cycle.logger, cycle.access_logger, cycle.access_log = self.logger, self.access_logger, self.access_log
        cycle.default_headers = self.server_state.default_headers
        cycle.message_event = asyncio.Event()
        cycle.on_response = self.on_response_complete
        cycle.keep_alive = http_version != "1.0" and parser.should_keep_alive()
        cycle.waiting_for_100_continue = self.expect_100_continue
        cycle.inflight = self.tasks
        # The body is charged in full now, not as it arrives: the budget then counts the requests let in, not
        # only the part of them read so far.
        budget = cycle.budget = self.budget
        delta, self._estimate = declared - self._estimate, 0
        if delta > 0:
            budget.charge(delta)
        elif delta:  # less than its estimate (a GET, a small body): the rest may let another in
            budget.refund(-delta)
        cycle.charge = declared
        if previous is None or previous.response_complete:
            self._start_asgi_task(cycle, app)
        else:  # pipelined: queued until the response before it is complete
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, app))

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        cycle = self.cycle
        if self._body_bytes > cycle.charge and not cycle.response_complete:  # chunked: charged as it comes
            cycle.budget.charge(self._body_bytes - cycle.charge)
            cycle.charge = self._body_bytes
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
        # what the next connection let in from the queue is charged until its headers are read
        self.budget.estimate = self._body_bytes if self._body_bytes > MIN_ESTIMATE else MIN_ESTIMATE
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._in_head, self._head_bytes, self._tail = True, 0, b""
        cycle = self.cycle
        if cycle.response_complete or (self.parser.should_upgrade() and self._should_upgrade()):
            return
        cycle.more_body = False
        cycle.message_event.set()

    def on_response_complete(self) -> None:
        """The response is out: the next pipelined request starts, or the connection waits idle. The idle
        timeout is one timer per connection, not a timer armed per response and cancelled by the next request
        (a third of a microsecond's allocation and two libuv calls each time): it is armed when none is, and
        when it fires on a connection busy again or idle for less than the timeout, it waits the rest."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            self._idle_at = None
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_at = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self._keep_alive_due)

    def _unset_keepalive_if_required(self) -> None:
        self._idle_at = None  # bytes arrived (or the connection is parked): not idle; the timer is left armed

    def _keep_alive_due(self) -> None:
        self.timeout_keep_alive_task = None
        idle_at = self._idle_at
        if idle_at is None:
            return  # busy: the end of its response arms it again
        left = idle_at + self.timeout_keep_alive - self.loop.time()
        if left > KEEP_ALIVE_SLACK:
            self.timeout_keep_alive_task = self.loop.call_later(left, self._keep_alive_due)
        else:
            self.timeout_keep_alive_handler()

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
        for t in (self._head_timer, self._body_timer, self.timeout_keep_alive_task):
            if t is not None:
                t.cancel()
        self._head_timer = self._body_timer = self.timeout_keep_alive_task = None

    def _refuse(self, r: Refused, started: bool = False) -> None:
        self._cancel_timers()
        if self.transport.is_closing():
            return
        if not started:
            self.transport.write(refusal(r.status, r.message, r.headers))
        self.transport.close()


def guarded_protocol(limits: ReadLimits) -> Any:
    """What to hand uvicorn (`http=`): a factory of connections bound to these limits and one body budget
    (per process: every worker builds its own), each a `Reader` so that the event loop reads into orgate's
    buffers."""
    cls = type("GuardedHttpTools", (GuardedHttpTools,),
               {"limits": limits, "budget": BodyBudget(limits.max_buffered_body_bytes)})

    def connection(*args: Any, **kw: Any) -> Reader:
        return Reader(cls(*args, **kw))

    connection.protocol = cls  # type: ignore[attr-defined]
    return connection
