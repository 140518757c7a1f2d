"""orgate's protocol (server/guard.py) does uvicorn's per-request work itself (the scope, the cycle, the end of a
response, the idle timeout): what an application sees and what a client gets must be what uvicorn's own
httptools protocol gives. Real uvicorn and uvloop on a real port, raw socket clients.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
import uvloop
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from orgate.server.cycle import Cycle
from orgate.server.guard import ReadLimits, guarded_protocol

Client = Callable[[int], Awaitable[Any]]


def _serve(app: Any, client: Client, http: Any, **config: Any) -> Any:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main() -> Any:
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, loop="none", lifespan="off",
                                               http=http, log_level="warning", ws="none", **config))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            return await asyncio.wait_for(client(port), 30)
        finally:
            server.should_exit = True
            await task

    return uvloop.run(main())


async def _exchange(port: int, raw: bytes, answers: int = 1) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        out = b""
        for _ in range(answers):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            out += head + await reader.readexactly(length)
        return out
    finally:
        writer.close()


class Recorder:
    """Answers `<method> <path>` and keeps what it saw of the scope and of the cycle behind `receive`."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.cycles: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        cycle = receive.__self__
        names = set(vars(RequestResponseCycle(scope, *[None] * 6, asyncio.Event(), False, True, lambda: None)))
        self.cycles.append({n: getattr(cycle, n) for n in names})
        body = (await receive())["body"]
        self.scopes.append({k: v for k, v in scope.items() if k not in ("server", "client", "state")})
        out = b"%s %s %d" % (scope["method"].encode(), scope["raw_path"], len(body))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(out))]})
        await send({"type": "http.response.body", "body": out})


REQUESTS = (b"POST /a%20b/c?x=1&y=%2F HTTP/1.1\r\nHost: t\r\nX-Trailing: kept  \t\r\nContent-Length: 3\r\n\r\nabc"
            b"HEAD /head HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET /plain HTTP/1.0\r\nHost: t\r\n\r\n")  # HTTP/1.0: answered with connection: close, closed


def _both(client: Client, **config: Any) -> tuple[tuple[Recorder, Any], tuple[Recorder, Any]]:
    theirs, ours = Recorder(), Recorder()
    return ((theirs, _serve(theirs, client, "httptools", **config)),
            (ours, _serve(ours, client, guarded_protocol(ReadLimits()), **config)))


def test_scope_cycle_and_answers_are_uvicorns() -> None:
    """Three pipelined requests (a POST with a percent-encoded path, query and body; HEAD; HTTP/1.0):
    the same scopes, the same cycle state when the application starts, the same bytes back. Fails when an
    upgrade of uvicorn changes what its protocol puts in the scope or in its cycle and orgate's does not."""

    async def client(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUESTS)
        out = await asyncio.wait_for(reader.read(), 10)  # to the server's close after the HTTP/1.0 answer
        writer.close()
        return b"".join(line for line in out.splitlines(keepends=True) if not line.startswith(b"date: "))

    (theirs, their_bytes), (ours, our_bytes) = _both(client)
    assert our_bytes == their_bytes
    assert our_bytes.count(b"HTTP/1.1 200 OK") == 3 and our_bytes.endswith(b"GET /plain 0")
    assert [s["path"] for s in ours.scopes] == ["/a b/c", "/head", "/plain"]
    assert ours.scopes == theirs.scopes
    assert (ours.scopes[0]["headers"][1] == (b"x-trailing", b"kept")  # RFC 9110 5.5: no trailing whitespace
            and ours.scopes[2]["http_version"] == "1.0" and ours.scopes[0]["query_string"] == b"x=1&y=%2F")
    for mine, uvicorns in zip(ours.cycles, theirs.cycles, strict=True):
        assert mine.keys() == uvicorns.keys()
        differ = {k for k in mine if mine[k] != uvicorns[k]}
        # per server or per object: the transport (Corked around it), its flow control, the event, the callback,
        # the scope (compared above), the default headers (the date); the body: bytes against uvicorn's bytearray
        allowed = {"transport", "flow", "message_event", "on_response", "body", "scope", "default_headers"}
        assert differ <= allowed, differ
        assert bytes(mine["body"]) == bytes(uvicorns["body"])
    assert [c["keep_alive"] for c in ours.cycles] == [True, True, False]


def test_the_app_runs_in_orgates_cycle() -> None:
    seen: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(type(receive.__self__))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    _serve(app, lambda port: _exchange(port, b"GET / HTTP/1.1\r\nhost: t\r\n\r\n"), guarded_protocol(ReadLimits()))
    assert seen == [Cycle]


async def _closed_after(reader: asyncio.StreamReader, limit: float) -> float:
    """Seconds until the server closes the connection (EOF)."""
    t = time.monotonic()
    assert await asyncio.wait_for(reader.read(1), limit) == b""
    return time.monotonic() - t


def test_idle_timeout_counts_from_the_last_response() -> None:
    """One timer per connection, armed at the first response: it must close an idle connection after the
    timeout from the *last* response (not the first), and never a connection whose request is still running."""
    timeout = 0.6
    slow = {b"/slow"}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["raw_path"] in slow:
            await asyncio.sleep(timeout * 1.5)  # still running when the timer armed by the previous answer fires
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: bytes) -> None:
        writer.write(b"GET %s HTTP/1.1\r\nhost: t\r\n\r\n" % path)
        assert (await asyncio.wait_for(reader.readuntil(b"ok"), 10)).startswith(b"HTTP/1.1 200")

    async def client(port: int) -> tuple[float, float, float, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await one(reader, writer, b"/")
        idle = await _closed_after(reader, 5)  # idle from the first answer on
        writer.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await one(reader, writer, b"/")
        t0 = time.monotonic()
        await asyncio.sleep(timeout * 0.6)
        await one(reader, writer, b"/")  # the timer armed by the first answer finds this one's end too recent
        later = await _closed_after(reader, 5)
        since_first = time.monotonic() - t0
        writer.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await one(reader, writer, b"/")
        await one(reader, writer, b"/slow")  # busy when the timer fires: not closed under it
        busy = await _closed_after(reader, 5)
        writer.close()
        return idle, later, since_first, busy

    idle, later, since_first, busy = _serve(app, client, guarded_protocol(ReadLimits()), timeout_keep_alive=timeout)
    assert timeout * 0.9 <= idle < timeout + 0.5
    assert timeout * 0.9 <= later < timeout + 0.5  # from the second answer: the first timer waited the rest
    assert since_first >= timeout * 1.5
    assert timeout * 0.9 <= busy < timeout + 0.5


def test_a_connection_gone_leaves_no_idle_timer() -> None:
    """The idle timer holds its connection's protocol: a closed connection's timer is cancelled at once."""
    protocols: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    http = guarded_protocol(ReadLimits())

    def made(*a: Any, **kw: Any) -> Any:
        reader = http(*a, **kw)
        protocols.append(reader.proto)
        return reader

    async def client(port: int) -> Any:
        await _exchange(port, b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
        await asyncio.sleep(0.2)
        return protocols[0].timeout_keep_alive_task

    assert _serve(app, client, made, timeout_keep_alive=60) is None
