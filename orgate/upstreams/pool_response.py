"""The response side of the lean client (pool.py): the UpstreamResponse a caller reads.

The connection (pool.Conn) buffers what the parser hands it; this reads that buffer, applies the read
timeouts of http.py, undoes a content-encoding the upstream used although we asked for identity, and
gives the connection back to the pool once the body ended, or closes it when the reader stops early.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from orgate.errors import UpstreamUnavailable
from orgate.upstreams.pool_conn import INF

if TYPE_CHECKING:
    from orgate.upstreams.pool_conn import Conn


class _Deflate:
    """`deflate` as servers send it: zlib-wrapped (RFC 9110) or, from some, raw; told apart by its header."""

    def __init__(self) -> None:
        self._d: Any = None

    def decompress(self, data: bytes) -> bytes:
        if self._d is None:
            wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and ((data[0] << 8) | data[1]) % 31 == 0
            self._d = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        return bytes(self._d.decompress(data))

    def flush(self) -> bytes:
        return bytes(self._d.flush()) if self._d is not None else b""


def _decoder(encoding: str) -> Any:
    e = encoding.strip().lower()
    if e in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if e == "deflate":
        return _Deflate()
    return None  # identity, or one we cannot undo: passed through as aiohttp did


class Response:
    """An upstream answer: `status`, `headers` (lower-case names), and its body read whole or in chunks."""

    __slots__ = ("status", "headers", "relay", "_c", "_dec", "_first", "_idle")

    def __init__(self, conn: Conn, first_byte: float, idle: float | None) -> None:
        self._c: Conn | None = conn
        self.status = conn.status
        self.headers = conn.headers
        self.relay = conn.relay  # base.relayed(headers), computed while parsing (render.answer_headers)
        enc = conn.headers.get("content-encoding")
        self._dec = _decoder(enc) if enc else None
        self._first = first_byte
        self._idle = idle

    def __del__(self) -> None:
        c = self._c
        if c is not None:  # dropped unread: its connection cannot be reused
            self._c = None
            try:
                c.drop()
            except RuntimeError:  # its loop is already closed
                pass

    async def _next(self, limit: float | None, what: str) -> bytes:
        """The body bytes arrived since the last call (b"" at the end), waiting at most `limit` for some."""
        c = self._c
        while c is not None:
            if c.exc is not None:
                exc = c.exc
                self._end(False)
                raise exc
            if c.buf:
                data = c.take()
                if self._dec is not None:
                    data = self._decode(data, False)
                    if not data:
                        continue
                elif c.done:  # the last bytes: the connection goes back now, the next call ends
                    self._end(True)
                return data
            if c.done:
                self._end(True)
                return self._decode(b"", True) if self._dec is not None else b""
            await c.wait(INF if limit is None else c.loop.time() + limit)
            if c.timed_out:
                self._end(False)
                raise UpstreamUnavailable(f"upstream {what}", timeout=True)
        return b""

    def _decode(self, data: bytes, last: bool) -> bytes:
        try:
            out = bytes(self._dec.decompress(data))
            return out + bytes(self._dec.flush()) if last else out
        except zlib.error:
            self._end(False)
            raise UpstreamUnavailable("upstream sent a body that does not decode") from None

    def _end(self, complete: bool) -> None:
        c = self._c
        if c is not None:
            self._c = None
            if complete:
                c.release()
            else:
                c.drop()

    async def read(self) -> bytes:
        """The whole body; `first_byte` bounds each wait for more of it."""
        first = await self._next(self._first, "read timed out")
        if not first:
            return b""
        parts = [first]
        while chunk := await self._next(self._first, "read timed out"):
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (the upstream's bytes unchanged, de-chunked)."""
        return _Chunks(self)

    async def _chunk(self, limit: float | None, what: str) -> bytes:
        chunk = await self._next(limit, what)
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        c = self._c
        if c is not None:
            self._c = None
            if c.done and c.exc is None:  # all of it arrived, only not read: the connection is clean
                c.release()
            else:
                c.drop()  # never reuse a half-read connection


class _Chunks:
    """Response.iter_chunks: an iterator object, not an async generator. The event loop registers every
    async generator in a WeakSet on its first step (its shutdown hook), a Python-level add and, when the
    generator goes, a weakref callback: per stream, for nothing, since the response closes its connection
    itself (aclose). Each step is one coroutine, the same as a generator's."""

    __slots__ = ("_r", "_first")

    def __init__(self, r: Response) -> None:
        self._r = r
        self._first = True

    def __aiter__(self) -> _Chunks:
        return self

    def __anext__(self) -> Any:
        r = self._r
        if self._first:
            self._first = False
            return r._chunk(r._first, "stream timed out before its first chunk")
        return r._chunk(r._idle, "stream timed out between events")
