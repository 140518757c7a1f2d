"""Upstream calls through the operator's HTTPS proxy: aiohttp, which does the CONNECT tunnelling.

Only http.py imports this, and only when a proxy applies to a URL: a gateway that reaches its providers
directly (pool.py) never loads aiohttp's client. Timeouts and errors as documented in http.py.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from orgate.errors import UpstreamUnavailable

_session: aiohttp.ClientSession | None = None
# Responses whose body is still being read, and the error they all end with once shutdown cuts them (end_all).
_reading: weakref.WeakSet[AioResponse] = weakref.WeakSet()
_waiting: set[asyncio.Timeout] = set()  # the waits for an answer's headers
_ending: Callable[[], Exception] | None = None


def session() -> aiohttp.ClientSession:
    global _session
    if _session is None or _session.closed:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
        # We ask upstreams for identity encoding; decompression stays on for the rare one that ignores it.
        _session = aiohttp.ClientSession(connector=connector, auto_decompress=True, trust_env=False)
    return _session


async def close() -> None:
    global _session, _ending
    if _session is not None and not _session.closed:
        await _session.close()
    _session = None
    _ending = None


class AioResponse:
    """An aiohttp response (through a proxy) seen through the UpstreamResponse protocol."""

    __slots__ = ("_resp", "status", "headers", "_first", "_idle", "__weakref__")

    def __init__(self, resp: aiohttp.ClientResponse, headers: dict[str, str] | None = None,
                 first_byte: float | None = None, idle: float | None = None) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers = headers if headers is not None else {k.lower(): v for k, v in resp.headers.items()}
        self._first = first_byte
        self._idle = idle
        _reading.add(self)
        if _ending is not None:
            resp.content.set_exception(_ending())

    async def read(self) -> bytes:
        try:
            async with asyncio.timeout(self._first):
                return await self._resp.read()
        except (aiohttp.ClientError, TimeoutError) as e:
            raise UpstreamUnavailable(f"upstream read failed: {type(e).__name__}", timeout=isinstance(e, TimeoutError)) from None
        finally:
            _reading.discard(self)
            self._resp.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        limit, what = self._first, "before its first chunk"
        while True:
            try:
                async with asyncio.timeout(limit):
                    chunk = await self._resp.content.readany()
            except TimeoutError:
                raise UpstreamUnavailable(f"upstream stream timed out {what}", timeout=True) from None
            except aiohttp.ClientError as e:
                raise UpstreamUnavailable(f"upstream stream failed: {type(e).__name__}") from None
            if not chunk:
                return
            yield chunk
            limit, what = self._idle, "between events"

    async def aclose(self) -> None:
        _reading.discard(self)
        self._resp.close()


def end_all(error: Callable[[], Exception]) -> int:
    global _ending
    _ending = error
    reading = list(_reading)
    for r in reading:
        r._resp.content.set_exception(error())
    now = asyncio.get_running_loop().time()
    for w in list(_waiting):
        w.reschedule(now)
    return len(reading) + len(_waiting)


async def post(url: Any, data: bytes, headers: dict[str, str], proxy: str, *, connect: float, read: float,
               idle: float | None = None, **kw: Any) -> AioResponse:
    stream = idle is not None
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=None if stream else read)
    try:
        async with asyncio.timeout(read if stream else None) as waiting:  # first byte, connection set-up included
            _waiting.add(waiting)
            resp = await session().post(url, data=data, headers=headers, timeout=timeout, proxy=proxy, **kw)
    except TimeoutError:
        if _ending is not None:  # end_all: shutdown cut the wait for the answer
            raise _ending() from None
        raise UpstreamUnavailable("upstream timed out before answering", timeout=True) from None
    except aiohttp.ClientError as e:
        raise UpstreamUnavailable(f"upstream connection failed: {type(e).__name__}") from None
    finally:
        _waiting.discard(waiting)
    if stream:
        return AioResponse(resp, first_byte=read, idle=idle)
    return AioResponse(resp)
