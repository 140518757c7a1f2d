"""The body budget (server/intake.py) against real uvicorn and uvloop on a real port, raw socket clients.

Many connections open at once, each sending its whole request in one write (what a burst of Claude Code
requests looks like on a fast network). Past the budget a connection's request must stay in the kernel: the
process reads one byte of it and nothing more until bodies are let go. Every request is still answered, with
its exact body, and the budget's count returns to zero.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from typing import Any

import uvicorn
import uvloop

from orgate.server.guard import ReadLimits, guarded_protocol, let_go

BODY = bytes(range(256)) * 400  # 100 KB, every byte value
N = 16


def _request(body: bytes, close: bool = False, chunked: bool = False) -> bytes:
    head = b"POST /x HTTP/1.1\r\nhost: t\r\n" + (b"connection: close\r\n" if close else b"")
    if chunked:
        return head + b"transfer-encoding: chunked\r\n\r\n%x\r\n%b\r\n0\r\n\r\n" % (len(body), body)
    return head + b"content-length: %d\r\n\r\n%b" % (len(body), body)


class Probe:
    """Bytes the process has read and not yet answered (`unanswered`, its largest value in `most`), bytes of
    bodies received by the application and not yet let go (`holding`, largest in `most_holding`), handlers
    running (`running`, `most_running`)."""

    def __init__(self) -> None:
        self.unanswered = self.most = self.holding = self.most_holding = self.running = self.most_running = 0


def _factory(limit: int, probe: Probe) -> Any:
    factory = guarded_protocol(ReadLimits(max_buffered_body_bytes=limit))
    cls = factory.protocol
    real = cls.buffer_updated

    def buffer_updated(self: Any, nbytes: int, data: bytes | None = None) -> None:
        if data is None:  # a read by the loop (a parked connection's byte is fed again later, with `data`)
            probe.unanswered += 1 if self._parking else nbytes
            probe.most = max(probe.most, probe.unanswered)
        real(self, nbytes, data)

    cls.buffer_updated = buffer_updated
    return factory


class App:
    def __init__(self, probe: Probe, release_early: bool) -> None:
        self.probe, self.release_early = probe, release_early

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        chunks = []
        while True:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        body = b"".join(chunks)
        p = self.probe
        p.holding += len(body)
        p.most_holding = max(p.most_holding, p.holding)
        if self.release_early:  # what Pipeline._run does once the request is upstream
            let_go(receive)
            p.holding -= len(body)
        p.running += 1
        p.most_running = max(p.most_running, p.running)
        await asyncio.sleep(0.05)  # the upstream's time to answer
        p.running -= 1
        if not self.release_early:
            p.holding -= len(body)
        out = hashlib.sha256(body).hexdigest().encode()
        p.unanswered -= len(_request(body, chunked=any(v == b"chunked" for _, v in scope["headers"])))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(out)).encode())]})
        await send({"type": "http.response.body", "body": out})


async def _client(port: int, requests: list[bytes]) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = []
    try:
        for req in requests:
            writer.write(req)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            out.append(await reader.readexactly(length))
    finally:
        writer.close()
    return out


def _serve(app: Any, factory: Any, clients: Any) -> Any:
    """Run `clients(port)` against uvicorn + uvloop serving `app` through orgate's protocol on a real port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main() -> Any:
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, loop="none", lifespan="off",
                                               http=factory, log_level="warning", ws="none"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            return await asyncio.wait_for(clients(port), 60)
        finally:
            server.should_exit = True
            await task

    return uvloop.run(main())


def _burst(limit: int, requests: list[bytes], release_early: bool = False, n: int = N) -> tuple[list, Probe, Any]:
    probe = Probe()
    factory = _factory(limit, probe)

    async def clients(port: int) -> list[list[bytes]]:
        return await asyncio.gather(*(_client(port, requests) for _ in range(n)))

    return _serve(App(probe, release_early), factory, clients), probe, factory.protocol.budget


DIGEST = hashlib.sha256(BODY).hexdigest().encode()


def test_a_burst_of_new_connections_waits_in_the_kernel_past_the_budget():
    answers, probe, budget = _burst(250_000, [_request(BODY)])
    assert answers == [[DIGEST]] * N
    assert budget.waited > 0 and not budget.parked and budget.held == 0
    # At most the budget plus one request (the one let in just under it) read at once, with one byte of
    # each waiting connection: not the 16 x 100 KB the clients sent.
    assert probe.most <= 250_000 + len(_request(BODY)) + N, probe.most
    assert budget.most <= 250_000 + len(BODY)
    assert probe.most_holding <= 250_000 + len(BODY)


def test_without_a_budget_the_same_burst_is_read_at_once():
    answers, probe, budget = _burst(0, [_request(BODY)])
    assert answers == [[DIGEST]] * N and budget.waited == 0 and budget.held == 0
    assert probe.most_holding > 250_000 + len(BODY)  # the burst above does overlap: the bound is the budget's


def test_kept_alive_connections_wait_between_requests_and_a_chunked_body_is_charged_as_it_comes():
    requests = [_request(BODY), _request(BODY, chunked=True), _request(BODY[:10], close=True)]
    answers, probe, budget = _burst(250_000, requests, n=8)
    assert answers == [[DIGEST, DIGEST, hashlib.sha256(BODY[:10]).hexdigest().encode()]] * 8
    assert budget.waited > 0 and not budget.parked and budget.held == 0
    # A chunked body is charged as it is read, so the bound is looser by what the bodies let in in the
    # meantime had yet to send (here at most one more).
    assert probe.most_holding <= 250_000 + 2 * len(BODY)


def test_a_body_let_go_by_the_application_lets_the_next_in():
    # The handlers keep running after let_go (a stream, for minutes): they no longer count, so more of them
    # overlap than the budget holds bodies.
    answers, probe, budget = _burst(250_000, [_request(BODY)], release_early=True)
    assert answers == [[DIGEST]] * N and budget.held == 0
    assert budget.most <= 250_000 + len(BODY)
    assert probe.most_running > 3


def test_a_body_larger_than_the_whole_budget_is_served():
    big = BODY * 10  # 1 MB against a 250 KB budget
    answers, _, budget = _burst(250_000, [_request(big)], n=4)
    assert answers == [[hashlib.sha256(big).hexdigest().encode()]] * 4
    assert budget.held == 0 and budget.most <= len(big) + 250_000


async def _slow_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Holds a POST's body for `x-hold` seconds (an upstream that is slow to answer), answers at once otherwise."""
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    await asyncio.sleep(float(dict(scope["headers"]).get(b"x-hold", b"0")))
    out = b"%d" % len(body)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(out))]})
    await send({"type": "http.response.body", "body": out})


def _timed(port: int, req: bytes, after: float = 0.0) -> Any:
    async def go() -> tuple[bytes, float]:
        await asyncio.sleep(after)
        t = time.monotonic()
        (answer,) = await _client(port, [req])
        return answer, time.monotonic() - t
    return go()


def test_requests_without_a_body_are_read_while_the_budget_is_spent():
    factory = guarded_protocol(ReadLimits(max_buffered_body_bytes=50_000))
    held = b"POST /x HTTP/1.1\r\nhost: t\r\nx-hold: 1.5\r\ncontent-length: %d\r\n\r\n%b" % (len(BODY), BODY)
    health = b"GET /health HTTP/1.1\r\nhost: t\r\n\r\n"
    post = b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\n\r\nhello"

    async def clients(port: int) -> list:
        return await asyncio.gather(_timed(port, held), _timed(port, health, 0.3), _timed(port, post, 0.3))

    (a, _), (b, t_get), (c, t_post) = _serve(_slow_app, factory, clients)
    budget = factory.protocol.budget
    assert (a, b, c) == (b"%d" % len(BODY), b"0", b"5")
    assert t_get < 0.8  # not behind the held body
    assert t_post > 0.8  # a POST waited for it, unread
    assert budget.waited >= 1 and budget.held == 0 and not budget.parked


def test_no_request_waits_longer_than_the_most_a_stalled_upstream_may_make_it():
    factory = guarded_protocol(ReadLimits(max_buffered_body_bytes=50_000))
    budget = factory.protocol.budget
    budget.max_wait = 0.3
    held = b"POST /x HTTP/1.1\r\nhost: t\r\nx-hold: 3\r\ncontent-length: %d\r\n\r\n%b" % (len(BODY), BODY)
    post = b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\n\r\nhello"

    async def clients(port: int) -> list:
        return await asyncio.gather(_timed(port, held), _timed(port, post, 0.2))

    (a, _), (c, t_post) = _serve(_slow_app, factory, clients)
    assert (a, c) == (b"%d" % len(BODY), b"5")
    assert 0.25 < t_post < 2.0 and budget.overdue == 1
    assert budget.held == 0 and not budget.parked


def test_headers_whose_end_straddles_reads_are_found():
    # The loop-wide buffer is searched in place for the end of the headers; the last bytes of a read are
    # kept to find an end split across two reads ("\r\n" + "\r\n", "\r" + "\n\r\n", ...).
    # The header limit is just above the head: a body byte counted as header would be refused (431).
    head = b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 100\r\n\r\n"
    factory = guarded_protocol(ReadLimits(max_buffered_body_bytes=50_000, max_header_bytes=len(head) + 2))

    async def one(port: int, cut: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for part in (head[:cut], head[cut:] + b"x" * 100):
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(0.05)
            return await reader.read(1000)
        finally:
            writer.close()

    async def clients(port: int) -> list[bytes]:
        return [await one(port, len(head) - k) for k in (1, 2, 3, 4)]

    for answer in _serve(_slow_app, factory, clients):
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"100"), answer
