"""The HTTP client every upstream shares: pool.py's lean keep-alive client for direct connections, aiohttp
(CONNECT tunnelling) when the operator's HTTPS proxy applies to the URL.

Timeouts, as configured per provider (`timeouts: {connect, first_byte, idle}`) or in `routing`:
connect bounds the TCP/TLS handshake; first_byte bounds the wait for the response headers (counted from the
start of the request) and, on a stream, its first chunk (a JSON answer arrives whole, so for it first_byte bounds each read of the body); idle bounds
the silence between two chunks of a stream (Anthropic pings every few seconds, so a long idle means a hang).
A timeout becomes UpstreamUnavailable(timeout=True): 504 before the first byte, an error event after it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from orgate.errors import UpstreamUnavailable
from orgate.upstreams import pool
from orgate.upstreams.base import UpstreamResponse

HttpResponse = UpstreamResponse  # what post returns: pool.Response, or AioResponse through a proxy

_session: aiohttp.ClientSession | None = None
# Responses whose body is still being read, and the error they all end with once shutdown cuts them (end_all).
_reading: weakref.WeakSet[AioResponse] = weakref.WeakSet()
_waiting: set[asyncio.Timeout] = set()  # the waits for an answer's headers
_ending: Callable[[], Exception] | None = None


def _proxy_from_env() -> str | None:
    """The operator's HTTPS proxy (corporate egress), read once at startup.

    aiohttp's trust_env=True re-reads the environment and ~/.netrc in a thread pool on every request: about
    a fifth of the gateway's CPU per request in the benchmark profile. Reading it once gives the same proxy.
    """
    import os
    import urllib.request

    proxies = urllib.request.getproxies()
    return proxies.get("https") or proxies.get("http") or os.environ.get("HTTPS_PROXY") or None


def session() -> aiohttp.ClientSession:
    global _session
    if _session is None or _session.closed:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
        # We ask upstreams for identity encoding; decompression stays on for the rare one that ignores it.
        _session = aiohttp.ClientSession(connector=connector, auto_decompress=True, trust_env=False)
    return _session


_PROXY = _proxy_from_env()
_BYPASS: dict[str, bool] = {}


def proxy_for(url: Any) -> str | None:
    """The proxy for this URL's host, honouring NO_PROXY; decided once per host."""
    if _PROXY is None:
        return None
    import urllib.request

    from yarl import URL

    host = (url if isinstance(url, URL) else URL(str(url))).host or ""
    if host not in _BYPASS:
        _BYPASS[host] = bool(urllib.request.proxy_bypass(host))
    return None if _BYPASS[host] else _PROXY


async def close_session() -> None:
    global _session, _ending
    await pool.close()
    if _session is not None and not _session.closed:
        await _session.close()
    _session = None
    _ending = None  # a later app in this process (tests) starts clean


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
    """At the end of the shutdown grace: every response still being read raises `error()` at its next read
    (the relays then end their streams with the dialect's error event), a request still waiting for its
    answer raises it now, and so does every later one. Returns how many were cut."""
    global _ending
    _ending = error
    cut = pool.end_all(error)
    reading = list(_reading)
    for r in reading:
        r._resp.content.set_exception(error())
    now = asyncio.get_running_loop().time()
    for w in list(_waiting):
        w.reschedule(now)
    return cut + len(reading) + len(_waiting)


async def post(url: Any, data: bytes, headers: dict[str, str], *, connect: float, read: float,
               idle: float | None = None, **kw: Any) -> HttpResponse:
    """POST; `read` is the first-byte limit, `idle` (streams only) the limit between chunks after it."""
    if _ending is not None:
        raise _ending()
    proxy = proxy_for(url)
    if proxy is None:
        return await pool.post(url, data, headers, connect=connect, read=read, idle=idle)
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
