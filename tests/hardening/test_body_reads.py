"""Request bodies through orgate's protocol (server/guard.py), however they are split across reads.

The protocol keeps a body's first read as the bytes the parser made instead of copying it into uvicorn's
buffer and out again; a body that arrives in several reads is gathered as uvicorn does. Either way the
application must receive exactly the bytes sent, as `bytes`. Real uvicorn and uvloop on a real port; raw
socket clients choose how the body is split.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from typing import Any

import uvicorn
import uvloop

from orgate.server.guard import ReadLimits, guarded_protocol


class Echo:
    """Answers `<sha256 of the body> <receive messages> <all chunk types bytes>`; with `delay`, it starts reading
    late, so that several reads are gathered in the server's buffer before the first `receive`."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.sleep(self.delay)
        chunks: list[Any] = []
        while True:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        body = b"".join(chunks)
        out = b"%s %d %s" % (hashlib.sha256(body).hexdigest().encode(), len(chunks),
                             str(all(type(c) is bytes for c in chunks)).encode())
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(out)).encode())]})
        await send({"type": "http.response.body", "body": out})


async def _post(port: int, body: bytes, pieces: int) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n" % len(body))
        step = -(-len(body) // pieces)
        for i in range(0, len(body), step):
            writer.write(body[i : i + step])
            await writer.drain()
            if pieces > 1:
                await asyncio.sleep(0.05)  # separate reads on the server
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        return (await reader.readexactly(length)).split()
    finally:
        writer.close()


def _serve_and_post(body: bytes, pieces: int, delay: float = 0.0) -> list[bytes]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main() -> list[bytes]:
        server = uvicorn.Server(uvicorn.Config(Echo(delay), host="127.0.0.1", port=port, loop="none", lifespan="off",
                                               http=guarded_protocol(ReadLimits()), log_level="warning",
                                               ws="none"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            return await asyncio.wait_for(_post(port, body, pieces), 30)
        finally:
            server.should_exit = True
            await task

    return uvloop.run(main())


BODY = bytes(range(256)) * 800  # 200 KB, every byte value


def test_body_in_one_write_arrives_exactly():
    digest, _, all_bytes = _serve_and_post(BODY, 1)
    assert digest == hashlib.sha256(BODY).hexdigest().encode() and all_bytes == b"True"


def test_body_in_many_reads_arrives_exactly():
    digest, messages, all_bytes = _serve_and_post(BODY, 8)
    assert digest == hashlib.sha256(BODY).hexdigest().encode() and all_bytes == b"True"
    assert int(messages) > 1  # it did arrive in several reads (the gathering path ran)


def test_body_gathered_from_several_reads_before_the_first_receive_arrives_exactly():
    digest, messages, all_bytes = _serve_and_post(BODY, 8, delay=0.3)
    assert digest == hashlib.sha256(BODY).hexdigest().encode() and all_bytes == b"True"
    assert int(messages) < 8  # reads were gathered into one message at least once


def test_expect_100_continue_and_header_names_as_uvicorn_reads_them():
    """orgate's protocol reads headers itself (guard.on_header): names lower-cased into the scope, and a client
    that asks `Expect: 100-continue` is told to continue when the application first reads the body."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    seen: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["headers"])
        msg = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(msg["body"]))]})
        await send({"type": "http.response.body", "body": msg["body"]})

    async def main() -> tuple[bytes, bytes]:
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, loop="none", lifespan="off",
                                               http=guarded_protocol(ReadLimits()), log_level="warning", ws="none"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /x HTTP/1.1\r\nHost: t\r\nX-Mixed-Case: KeepMe\r\nExpect: 100-Continue\r\n"
                         b"Content-Length: 5\r\n\r\n")
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            writer.write(b"hello")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            body = await reader.readexactly(5)
            writer.close()
            return interim, head + body
        finally:
            server.should_exit = True
            await task

    interim, answer = uvloop.run(main())
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\nhello")
    assert seen[0] == [(b"host", b"t"), (b"x-mixed-case", b"KeepMe"), (b"expect", b"100-Continue"),
                       (b"content-length", b"5")]
