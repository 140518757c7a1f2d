"""How much request body the process holds at once, and the reads that keep it so (issue 18).

Every request body is held from its read until the request is upstream (`Request.release_body`, once the
upstream's response has opened) or its response is complete. Nothing else bounds how many are held at once:
256 concurrent 150 KB requests held 38 MB of bodies plus the heap fragmentation they leave, and the process
peaked at ~110 MB. `BodyBudget` counts the bytes held (a request is charged its declared `content-length`
as soon as its headers are read, more if a chunked body turns out larger) and, past
`server.max_buffered_body_bytes`, a connection about to start a new request is not read further: its
request waits in the kernel's socket buffers (not this process's memory) until bodies are let go, first
parked first let in. A request already being read is always read to its end, and one request larger than
the whole budget is let in when nothing else is held. Only requests that carry a body wait (their first
byte is `P`: POST, PUT, PATCH): health checks, metrics, the console and model lists are read at once. And no
request waits more than MAX_WAIT_SECONDS: if the upstreams stall with bodies held (a provider that accepts
requests and does not answer), the budget stops holding traffic back rather than stall every route; it
bounds bursts, not an outage.

The event loop reads into buffers orgate gives it (`asyncio.BufferedProtocol`): one loop-wide buffer for
every connection, so a read is not a new bytes object, and a parked connection's read is one byte. A plain
protocol cannot be held back at a new connection's first read: uvloop starts reading right after
`connection_made` whatever the protocol asked, and that read is the whole request on a fast network.
"""

from __future__ import annotations

import asyncio
import mmap
import sys
import weakref
from collections import deque
from typing import Any

# uvloop's own receive buffer is this size: a 150 KB request still arrives in one read when the kernel has it.
READ_SIZE = 256 * 1024
# What a connection let in from the queue is charged until its headers say its size: the last size seen
# (traffic is mostly alike), at least this, so a burst of let-ins does not overshoot by much.
MIN_ESTIMATE = 16 * 1024
MAX_WAIT_SECONDS = 2.0
LIVE: weakref.WeakSet[BodyBudget] = weakref.WeakSet()  # this process's budgets (one per server)


def totals() -> tuple[int, int, int]:
    """(bytes held, connections parked, connections let in past the budget) over this process's budgets:
    what /metrics shows (observe/metrics.py `watch_intake`)."""
    live = list(LIVE)
    return sum(b.held for b in live), sum(b.waited for b in live), sum(b.overdue for b in live)


class BodyBudget:
    """Bytes of request bodies held by the connections of one event loop, and the connections waiting."""

    __slots__ = ("__weakref__", "limit", "held", "parked", "buffer", "view", "peek", "estimate", "most", "waited",
                 "overdue", "timer", "max_wait")

    def __init__(self, limit: int) -> None:
        self.limit = limit if limit > 0 else sys.maxsize  # 0: no limit
        self.held = 0
        self.parked: deque[Any] = deque()
        # An anonymous mapping, not a bytearray: its pages cost memory only once a read has reached them (a
        # bytearray is zeroed, 256 KB resident from the start, for a process that may only see small requests).
        self.buffer = mmap.mmap(-1, READ_SIZE)
        self.view = memoryview(self.buffer)
        self.peek = bytearray(1)  # a parked connection's read: one byte, kept until it is let in
        self.estimate = MIN_ESTIMATE
        self.most = 0  # the largest `held` seen (tests, diagnostics)
        self.waited = 0  # connections that were parked (/metrics, tests)
        self.overdue = 0  # ... and let in past the budget because they had waited MAX_WAIT_SECONDS
        self.timer: asyncio.TimerHandle | None = None
        self.max_wait = MAX_WAIT_SECONDS
        LIVE.add(self)

    def charge(self, n: int) -> None:
        self.held += n
        if self.held > self.most:
            self.most = self.held

    def refund(self, n: int) -> None:
        self.held -= n
        if self.parked and self.held < self.limit:
            self.wake()

    def park(self, proto: Any, now: float) -> None:
        self.waited += 1
        self.parked.append((proto, now))
        if self.timer is None:
            self.timer = proto.loop.call_later(self.max_wait, self.sweep, proto.loop)

    def forget(self, proto: Any) -> None:
        for entry in self.parked:
            if entry[0] is proto:
                self.parked.remove(entry)
                return

    def wake(self) -> None:
        """Let parked connections in, first parked first, while the budget has room (each charged an
        estimate until its headers are read)."""
        while self.parked and self.held < self.limit:
            self.let_in(self.parked.popleft()[0])
        if not self.parked and self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def let_in(self, proto: Any) -> None:
        self.charge(self.estimate)
        proto.unpark(self.estimate)

    def sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Let in whoever has waited MAX_WAIT_SECONDS, budget or not (the queue is in arrival order)."""
        self.timer = None
        now = loop.time()
        parked = self.parked
        while parked and now - parked[0][1] >= self.max_wait:
            self.overdue += 1
            self.let_in(parked.popleft()[0])
        if parked:
            self.timer = loop.call_later(self.max_wait - (now - parked[0][1]), self.sweep, loop)


class Reader(asyncio.BufferedProtocol):
    """What the event loop is given for an HTTP connection. uvloop reads into a protocol's buffers only if it
    is not an `asyncio.Protocol`, which uvicorn's protocol is; the loop's callbacks are the protocol's own
    bound methods, set on this object, so no call goes through it."""

    def __init__(self, proto: Any) -> None:
        self.proto = proto
        self.connection_made = proto.connection_made  # type: ignore[method-assign]
        self.connection_lost = proto.connection_lost  # type: ignore[method-assign]
        self.eof_received = proto.eof_received  # type: ignore[method-assign]
        self.pause_writing = proto.pause_writing  # type: ignore[method-assign]
        self.resume_writing = proto.resume_writing  # type: ignore[method-assign]
        self.get_buffer = proto.get_buffer  # type: ignore[method-assign]
        self.buffer_updated = proto.buffer_updated  # type: ignore[method-assign]
