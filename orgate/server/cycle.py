"""The response side of orgate's HTTP/1.1 connections: uvicorn's request/response cycle with its writes
corked per event-loop turn and its `send` rebuilt for the hot path.

uvicorn's `RequestResponseCycle.send` checks every response header with two regular expressions (14 searches
for a usual answer of seven headers); here the names and the values are each checked with one search over
all of them joined, the same characters refused. Everything else keeps uvicorn 0.54's semantics: flow
control, HEAD, chunked encoding when no content-length is given, `connection: close`, the content-length
check, and `on_response` for keep-alive and pipelining.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, RequestResponseCycle

# The characters uvicorn refuses in a header name, and in a value (tab allowed).
_BAD_NAME = re.compile(b'[\x00-\x1f\x7f()<>@,;:\\[\\]={} \t\\\\"]')
_BAD_VALUE = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")


class Corked:
    """The transport as a response's cycle sees it: what the cycle writes in one turn of the event loop
    leaves in one write (one system call, one packet), flushed at the end of that turn or when the response
    is complete. A JSON answer's head and body leave together; a stream's head leaves with the events
    already at hand, and its last events with the chunked terminator. Nothing is held past the turn that
    wrote it, so a client sees a stream's headers and each event as soon as before."""

    __slots__ = ("real", "loop", "parts", "scheduled")

    def __init__(self, real: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.real, self.loop = real, loop
        self.parts: list[bytes] = []
        self.scheduled = False

    def write(self, data: bytes) -> None:
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._turn_ended)
        self.parts.append(data)

    def _turn_ended(self) -> None:
        self.scheduled = False
        self.flush()

    def flush(self) -> None:
        parts = self.parts
        if parts:
            self.parts = []
            if not self.real.is_closing():
                self.real.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def close(self) -> None:
        self.flush()
        self.real.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class Cycle(RequestResponseCycle):
    """uvicorn's request/response cycle with three savings on every request:

    - its writes are corked per turn of the event loop (Corked): a JSON answer is one write instead of two,
      a stream that arrives in one read from the upstream is one write instead of three;
    - the response head is checked with two searches, not two per header;
    - a client disconnect calls `on_disconnect` (set by the application through `watch_disconnect`) instead
      of the application keeping a task waiting on `receive` for it during every request.
    """

    on_disconnect: Any = None
    # uvicorn's initial request and response state, as class defaults: orgate's protocol (server/guard.py) makes
    # a cycle without uvicorn's __init__ and sets only what each request has of its own.
    disconnected = False
    body: Any = b""  # the first chunk as httptools made it; a bytearray once a second chunk is gathered
    more_body = True
    response_started = False
    response_complete = False
    chunked_encoding: bool | None = None
    expected_content_length = 0
    inflight: Any = ()  # the server's requests in flight (uvicorn's task set), set by the protocol
    transport: Any
    budget: Any = None  # server/intake.py's BodyBudget, and what this request's body is charged to it
    charge = 0

    def let_go(self) -> None:
        if self.charge:
            charge, self.charge = self.charge, 0
            self.budget.refund(charge)

    async def receive(self) -> Any:
        """uvicorn's `receive`, without awaiting the event when the body is already there (most requests:
        it arrived with the headers): no coroutine to create and run for a wait that would not wait."""
        if self.waiting_for_100_continue and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.waiting_for_100_continue = False
        if not self.disconnected and not self.response_complete:
            self.flow.resume_reading()
            event = self.message_event
            if not event.is_set():
                await event.wait()
            event.clear()
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        message = {"type": "http.request", "body": bytes(self.body), "more_body": self.more_body}
        self.body = b""
        return message

    async def send(self, message: Any) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started:
            self._start(message)
        elif not self.response_complete:
            self._body(message)
        else:
            raise RuntimeError(f"Unexpected ASGI message '{message['type']}' sent, after response already completed.")

    def _start(self, message: Any) -> None:
        if message["type"] != "http.response.start":
            raise RuntimeError(f"Expected ASGI message 'http.response.start', but got '{message['type']}'.")
        self.response_started = True
        self.waiting_for_100_continue = False
        status = message["status"]
        headers = [*self.default_headers, *message.get("headers", ())]
        names = [name.lower() for name, _ in headers]
        values = [value for _, value in headers]
        if _BAD_NAME.search(b"_".join(names)):
            raise RuntimeError("Invalid HTTP header name.")
        if _BAD_VALUE.search(b"\t".join(values)):
            raise RuntimeError("Invalid HTTP header value.")
        content = [STATUS_LINE[status]]
        has_close = False
        for name, value in zip(names, values, strict=True):
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection" and b"close" in [t.lower().strip() for t in value.split(b",")]:
                self.keep_alive = False
                has_close = True
            content.extend((name, b": ", value, b"\r\n"))
        if not self.keep_alive and not has_close:
            content.append(b"connection: close\r\n")
        if self.chunked_encoding is None and self.scope["method"] != "HEAD" and status not in (204, 304):
            self.chunked_encoding = True
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        self.transport.write(b"".join(content))

    def _body(self, message: Any) -> None:
        if message["type"] != "http.response.body":
            raise RuntimeError(f"Expected ASGI message 'http.response.body', but got '{message['type']}'.")
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if self.scope["method"] == "HEAD":
            self.expected_content_length = 0
        elif self.chunked_encoding:
            if body:
                self.transport.write(b"%x\r\n%b\r\n%b" % (len(body), body, b"" if more else b"0\r\n\r\n"))
            elif not more:
                self.transport.write(b"0\r\n\r\n")
        else:
            if len(body) > self.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            self.expected_content_length -= len(body)
            self.transport.write(body)
        if not more:
            if self.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self.response_complete = True
            self.message_event.set()
            self.let_go()
            if not self.keep_alive:
                self.transport.close()  # Corked.close writes what is held first
            else:
                self.transport.flush()  # the whole answer is out of the application: out of the process too
            self.on_response()


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


def let_go(receive: Any) -> None:
    """The application no longer holds this request's body: its bytes leave the body budget."""
    cycle = getattr(receive, "__self__", None)
    if isinstance(cycle, Cycle):
        cycle.let_go()
