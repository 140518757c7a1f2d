"""The keep-alive stage (server/keepalive.py): pings on silence from one shared ticker per loop and interval."""

from __future__ import annotations

import asyncio

from orgate.server import keepalive
from orgate.server.keepalive import ANTHROPIC_PING, KeepAlive

START = {"type": "http.response.start", "status": 200, "headers": []}
INTERVAL = 0.2


def body(data: bytes, more: bool = True) -> dict:
    return {"type": "http.response.body", "body": data, "more_body": more}


class Sink:
    def __init__(self, delay: float = 0.0) -> None:
        self.sent: list[bytes | None] = []
        self.delay = delay

    async def __call__(self, message: dict) -> None:
        if self.delay and message.get("body") != ANTHROPIC_PING:
            await asyncio.sleep(self.delay)
        self.sent.append(message.get("body"))


async def test_a_silent_stream_gets_pings_about_once_per_interval_and_none_after_its_end():
    sink = Sink()
    stage = KeepAlive(sink, INTERVAL, ANTHROPIC_PING)
    await stage.send(START)
    await stage.send(body(b"event: a\ndata: {}\n\n"))
    await asyncio.sleep(INTERVAL * 0.9)
    assert stage.pings == 0  # not before an interval of silence
    await asyncio.sleep(INTERVAL * 3.2)
    assert 2 <= stage.pings <= 4, stage.pings
    await stage.send(body(b"", more=False))
    n = len(sink.sent)
    await asyncio.sleep(INTERVAL * 2)
    assert len(sink.sent) == n and sink.sent[-1] == b""  # nothing after the last frame
    assert not any(stage in t.stages for t in keepalive._tickers.values())


async def test_a_busy_stream_gets_no_ping_and_the_ticker_goes_when_idle():
    sink = Sink()
    stage = KeepAlive(sink, INTERVAL, ANTHROPIC_PING)
    await stage.send(START)
    for _ in range(12):
        await stage.send(body(b"data: {}\n\n"))
        await asyncio.sleep(INTERVAL / 3)
    assert stage.pings == 0
    stage.stop()
    await asyncio.sleep(INTERVAL / 2)
    assert (asyncio.get_running_loop(), INTERVAL) not in keepalive._tickers  # no stream left: no timer


async def test_no_ping_inside_a_frame_nor_during_a_slow_send():
    sink = Sink()
    stage = KeepAlive(sink, INTERVAL, ANTHROPIC_PING)
    await stage.send(START)
    await stage.send(body(b"event: a\ndata: {"))  # the upstream stopped mid-frame
    await asyncio.sleep(INTERVAL * 3)
    assert stage.pings == 0
    slow = Sink(delay=INTERVAL * 3)
    stage2 = KeepAlive(slow, INTERVAL, ANTHROPIC_PING)
    await stage2.send(START)
    await stage2.send(body(b"data: {}\n\n"))  # a send held by backpressure for three intervals
    assert stage2.pings == 0 and ANTHROPIC_PING not in slow.sent
    stage.stop()
    stage2.stop()


async def test_streams_of_one_interval_share_one_ticker_and_zero_disables():
    a, b = KeepAlive(Sink(), INTERVAL, ANTHROPIC_PING), KeepAlive(Sink(), INTERVAL, ANTHROPIC_PING)
    off = KeepAlive(Sink(), 0, ANTHROPIC_PING)
    for s in (a, b, off):
        await s.send(START)
    ticker = keepalive._tickers[(asyncio.get_running_loop(), INTERVAL)]
    assert ticker.stages == {a, b}
    await asyncio.sleep(INTERVAL * 1.6)
    assert a.pings == b.pings == 1 and off.pings == 0
    for s in (a, b, off):
        s.stop()
