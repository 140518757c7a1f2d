"""orgate's response cycle (server/cycle.py): uvicorn's semantics, corked writes, one-search header checks."""

from __future__ import annotations

import asyncio
import logging

import pytest
from uvicorn.protocols.http.flow_control import FlowControl

from orgate.server.cycle import Corked, Cycle
from orgate.server.guard import write_now


class Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def cycle(method: str = "POST", keep_alive: bool = True) -> tuple[Cycle, Transport, list[int]]:
    real = Transport()
    done: list[int] = []
    c = Cycle({"method": method, "type": "http"}, real, FlowControl(real), logging.getLogger("t"), logging.getLogger("t"),
              False, [(b"server", b"orgate")], asyncio.Event(), False, keep_alive, lambda: done.append(1))
    c.transport = Corked(real, asyncio.get_running_loop())
    return c, real, done


def start(status: int, headers: list[tuple[bytes, bytes]]) -> dict:
    return {"type": "http.response.start", "status": status, "headers": headers}


async def test_a_json_answer_is_one_write_made_when_it_is_complete() -> None:
    c, real, done = cycle()
    await c.send(start(200, [(b"Content-Type", b"application/json"), (b"content-length", b"2")]))
    assert real.writes == []  # held until the body (or the end of this turn)
    await c.send({"type": "http.response.body", "body": b"{}"})
    assert real.writes == [b"HTTP/1.1 200 OK\r\nserver: orgate\r\ncontent-type: application/json\r\n"
                           b"content-length: 2\r\n\r\n{}"]
    assert c.response_complete and done == [1] and not real.closed


async def test_a_stream_in_one_turn_is_one_write_and_each_turn_is_flushed() -> None:
    c, real, _ = cycle()
    await c.send(start(200, [(b"content-type", b"text/event-stream")]))
    await c.send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
    await asyncio.sleep(0)  # the turn ends: the head and the first event leave together
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\nserver: orgate\r\ncontent-type: text/event-stream\r\n"
                           b"transfer-encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n"]
    await c.send({"type": "http.response.body", "body": b"data: 2\n\n", "more_body": True})
    await c.send({"type": "http.response.body", "body": b"", "more_body": False})
    assert real.writes[1:] == [b"9\r\ndata: 2\n\n\r\n0\r\n\r\n"]


async def test_close_writes_what_is_held_first() -> None:
    c, real, _ = cycle(keep_alive=False)
    await c.send(start(404, [(b"content-length", b"1")]))
    await c.send({"type": "http.response.body", "body": b"x"})
    assert real.writes[0].startswith(b"HTTP/1.1 404 Not Found\r\n") and b"connection: close\r\n" in real.writes[0]
    assert real.writes[0].endswith(b"\r\n\r\nx") and real.closed


@pytest.mark.parametrize("name,value", [(b"x-ok", b"a\r\nset-cookie: evil"), (b"x-ok", b"a\nb"), (b"x-ok", b"\x00"),
                                        (b"bad name", b"v"), (b"bad:name", b"v"), (b"x\r\ny", b"v")])
async def test_a_header_uvicorn_would_refuse_is_refused(name: bytes, value: bytes) -> None:
    c, real, _ = cycle()
    with pytest.raises(RuntimeError, match="Invalid HTTP header"):
        await c.send(start(200, [(b"content-length", b"0"), (name, value)]))
    assert real.writes == []


async def test_a_tab_in_a_value_and_head_requests_are_kept_as_uvicorn_does() -> None:
    c, real, _ = cycle(method="HEAD")
    await c.send(start(200, [(b"content-length", b"5"), (b"x-list", b"a\tb")]))
    await c.send({"type": "http.response.body", "body": b""})
    assert b"x-list: a\tb\r\n" in real.writes[0] and real.writes[0].endswith(b"\r\n\r\n")


async def test_a_body_longer_than_its_content_length_is_an_error() -> None:
    c, _, _ = cycle()
    await c.send(start(200, [(b"content-length", b"1")]))
    with pytest.raises(RuntimeError, match="longer"):
        await c.send({"type": "http.response.body", "body": b"xy"})



async def test_write_now_is_given_only_to_the_one_request_in_flight() -> None:
    """A relay may write a stream's head and first frame at once (not at the end of the turn) only when no
    other request shares the turn; what it writes is what the cycle held, in one write."""
    c, real, _ = cycle()
    c.inflight = {1}
    flush = write_now(c.receive)
    assert flush is not None
    await c.send(start(200, [(b"content-type", b"text/event-stream")]))
    await c.send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
    assert real.writes == []
    flush()
    assert real.writes == [b"HTTP/1.1 200 OK\r\nserver: orgate\r\ncontent-type: text/event-stream\r\n"
                           b"transfer-encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n"]  # no turn has ended
    await c.send({"type": "http.response.body", "body": b"data: 2\n\n", "more_body": True})
    assert len(real.writes) == 1  # later writes are corked per turn as before
    c.inflight = {1, 2}  # another request is in flight: its work shares the turn
    assert write_now(c.receive) is None
    assert write_now(lambda: None) is None  # another server's receive
