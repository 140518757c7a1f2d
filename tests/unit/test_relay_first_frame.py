"""The Anthropic relay (server/anthropic_api.relay_stream) with a stream that arrives whole in one chunk: when the
request is the only one in flight, the first frame goes to the client before the rest of the chunk is checked;
in every case the bytes relayed are exactly the upstream's."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from orgate.dialects.anthropic.sse import error_event
from orgate.pipeline import Exchange
from orgate.server import anthropic_api
from orgate.server.anthropic_api import relay_stream

EVENTS: list[Any] = []  # what the relay did, in order: ("send", message) and ("flush",)


@pytest.fixture(autouse=True)
def alone(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What the server says (server/guard.write_now): the only request in flight, unless a test says not."""
    state = [True]
    EVENTS.clear()
    monkeypatch.setattr(anthropic_api, "write_now",
                        lambda receive: (lambda: EVENTS.append(("flush",))) if state[0] else None)
    return state


def frame(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()


START = frame("message_start", '{"type":"message_start","message":{"id":"msg_1","model":"m","usage":'
                               '{"input_tokens":12,"output_tokens":1}}}')
BLOCK = frame("content_block_start", '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}')
DELTAS = [frame("content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
                                       f'"text":"w{i} \\u00e9"}}}}') for i in range(15)]
END = (frame("content_block_stop", '{"type":"content_block_stop","index":0}')
       + frame("message_delta", '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}')
       + frame("message_stop", '{"type":"message_stop"}'))
STREAM = START + BLOCK + frame("ping", '{"type": "ping"}') + b"".join(DELTAS) + END


class Resp:
    closed = False

    async def aclose(self) -> None:
        self.closed = True


async def relay(chunks: list[bytes]) -> tuple[list[dict[str, Any]], Exchange]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        EVENTS.append(("send", message))

    async def upstream():  # type: ignore[no-untyped-def]
        for c in chunks:
            yield c

    app = SimpleNamespace(settings=SimpleNamespace(server=SimpleNamespace(keepalive_seconds=0)),
                          log=logging.getLogger("test"))
    req = SimpleNamespace(send=send, receive=None, request_id="req_1")
    ex = Exchange("req_1", api="anthropic")
    await relay_stream(app, req, ex, upstream(), Resp(), {})  # type: ignore[arg-type]
    return sent, ex


def bodies(sent: list[dict[str, Any]]) -> list[bytes]:
    return [m.get("body", b"") for m in sent if m["type"] == "http.response.body"]


async def test_a_whole_stream_in_one_chunk_sends_its_first_frame_alone_then_the_rest_byte_for_byte() -> None:
    sent, ex = await relay([STREAM])
    assert sent[0]["type"] == "http.response.start"
    out = bodies(sent)
    assert out[0] == START  # the client's first byte waits for one frame, not twenty-one
    assert b"".join(out) == STREAM
    # written at once: after the head and the first frame, before the rest is even sent
    assert [e[0] if e[0] == "flush" else e[1].get("body", b"")[:20] for e in EVENTS][:4] == \
        [b"", START[:20], "flush", BLOCK[:20]]
    assert sent[-1]["more_body"] is False
    assert (ex.usage.input_tokens, ex.usage.output_tokens) == (12, 9) and ex.error_type is None


async def test_the_first_frame_leaves_before_the_rest_of_its_chunk_is_checked() -> None:
    """A malformed frame later in the same chunk: the first frame was already sent, the frames before the bad
    one follow, then the error event (the stream is never relayed unchecked)."""
    bad = b'event: content_block_delta\ndata: {"type": "content_block_delta", "ind\x00\n\n'
    sent, ex = await relay([START + BLOCK + DELTAS[0] + bad + DELTAS[1] + END])
    out = bodies(sent)
    assert out[0] == START
    assert b"".join(out) == START + BLOCK + DELTAS[0] + error_event("api_error",
                                                                    "The upstream sent a malformed stream event.")
    assert ex.error_type == "api_error" and ex.usage.input_tokens == 12


async def test_streams_in_pieces_are_relayed_as_before() -> None:
    """Frames split anywhere across reads (the usual upstream): every byte relayed once, in order."""
    pieces = [STREAM[i:i + 37] for i in range(0, len(STREAM), 37)]
    sent, ex = await relay(pieces)
    assert b"".join(bodies(sent)) == STREAM and ("flush",) not in EVENTS  # no whole frame to split off
    assert ex.usage.output_tokens == 9 and ex.error_type is None


async def test_a_first_chunk_of_one_frame_is_sent_as_it_is() -> None:
    sent, _ = await relay([START, STREAM[len(START):]])
    out = bodies(sent)
    assert out[0] == START and b"".join(out) == STREAM and ("flush",) not in EVENTS  # corked per turn as ever


async def test_under_concurrency_a_whole_chunk_is_checked_and_sent_as_one(alone: list[bool]) -> None:
    """Other requests share the turn: the server corks its writes into one anyway, so the chunk is not split."""
    alone[0] = False
    sent, ex = await relay([STREAM])
    out = bodies(sent)
    assert out[0] == STREAM and b"".join(out) == STREAM and ex.usage.output_tokens == 9
    assert ("flush",) not in EVENTS


def test_orgates_server_tells_a_request_whether_it_is_alone() -> None:
    """On the real server (uvicorn with orgate's protocol), write_now is given to a request only while no other
    request is in flight: a request that arrives while another waits gets None."""
    import socket

    import uvicorn
    import uvloop

    from orgate.server.guard import ReadLimits, guarded_protocol, write_now

    seen: list[tuple[str, bool]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append((scope["path"], write_now(receive) is not None))
        if scope["path"] == "/wait":
            await asyncio.sleep(0.3)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def get(port: int, path: str) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nhost: t\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        body = await reader.readexactly(2)
        writer.close()
        return head + body

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main() -> None:
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, loop="none", lifespan="off",
                                               http=guarded_protocol(ReadLimits()), log_level="warning", ws="none"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            await get(port, "/alone")
            waiting = asyncio.create_task(get(port, "/wait"))
            await asyncio.sleep(0.1)
            await get(port, "/beside")
            await waiting
        finally:
            server.should_exit = True
            await task

    uvloop.run(main())
    assert seen == [("/alone", True), ("/wait", True), ("/beside", False)]
