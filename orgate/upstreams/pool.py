"""The lean upstream client: HTTP/1.1 keep-alive over asyncio Protocols, httptools' C parser (issue 18).

aiohttp's client cost about a fifth of the gateway's CPU per request (request/response objects, header
multidicts, payload registry, stream writer, data queues, a timer object per read). An upstream call is
always one POST of bytes we already hold, answered with JSON or a stream we pass on byte for byte, so this
does only that: one transport.write per request, the parser's callbacks filling a buffer, one future per
wait, and one timer per response that is moved, not recreated, as data arrives. Timeouts and errors are
those documented in http.py, which dispatches here for every direct (unproxied) call.

Connections are pooled per (scheme, host, port), last in first out (the warmest connection, and the
others age out), without a limit on their number; an idle one is closed after KEEPALIVE seconds by one
sweep timer for the whole pool. A connection returns to the pool only once its response was read to the
end without error; anything else (aclose mid-body, a failure, `connection: close`, a body read until EOF)
closes it. A reused connection the server had already closed (reset/EOF before any response byte) is
retried once on a fresh one; nothing is retried once a response byte arrived.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import Any

from yarl import URL

from orgate.errors import UpstreamUnavailable
from orgate.upstreams.pool_conn import HIGH_WATER, INF, Conn, Stale
from orgate.upstreams.pool_response import Response

__all__ = ["HIGH_WATER", "Conn", "Response", "close", "end_all", "post"]

KEEPALIVE = 60.0  # seconds an idle connection is kept
DNS_TTL = 300.0
BIG_BODY = 16 * 1024

_ending: Callable[[], Exception] | None = None  # set by end_all: shutdown cuts every response
_default_tls: ssl.SSLContext | None = None


class _Target:
    __slots__ = ("key", "host", "port", "tls", "authority", "path")

    def __init__(self, url: URL) -> None:
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise UpstreamUnavailable(f"upstream connection failed: unsupported scheme {scheme!r}")
        self.host = url.raw_host or ""
        self.port = url.port or (443 if scheme == "https" else 80)
        self.tls = scheme == "https"
        self.key = (scheme, self.host, self.port)
        # the Host header as aiohttp wrote it: IPv6 in brackets, the port only when not the default
        self.authority = f"[{self.host}]" if ":" in self.host else self.host.rstrip(".")
        if not url.is_default_port():
            self.authority += f":{self.port}"
        self.path = url.raw_path_qs


_targets: dict[str, _Target] = {}


def target(url: Any) -> _Target:
    """The parsed URL; a string as yarl (and so aiohttp) reads it, cached: an upstream posts to few URLs."""
    if isinstance(url, URL):  # already encoded (Bedrock's signed path): taken as is
        return _Target(url)
    t = _targets.get(url)
    if t is None:
        if len(_targets) > 1024:
            _targets.clear()
        t = _targets[url] = _Target(URL(url))
    return t


class _Pool:
    """Everything bound to one event loop: idle and live connections, the sweep timer, the DNS cache."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.idle: dict[tuple[str, str, int], list[Conn]] = {}
        self.live: set[Conn] = set()
        self.connecting: set[asyncio.Timeout] = set()
        self.dns: dict[tuple[str, int], tuple[float, list[Any]]] = {}
        self.sweeper: asyncio.TimerHandle | None = None

    def checkout(self, key: tuple[str, str, int], now: float) -> Conn | None:
        stack = self.idle.get(key)
        while stack:
            c = stack.pop()
            if c.closed or c.transport.is_closing():
                continue
            if now - c.idle_since > KEEPALIVE:
                c.drop()
                continue
            return c
        return None

    def put(self, c: Conn) -> None:
        c.idle_since = self.loop.time()
        stack = self.idle.get(c.key)
        if stack is None:
            stack = self.idle[c.key] = []
        stack.append(c)
        if self.sweeper is None:
            self.sweeper = self.loop.call_at(c.idle_since + KEEPALIVE, self.sweep)

    def sweep(self) -> None:
        """Close the connections idle for KEEPALIVE; come back when the oldest left is due."""
        self.sweeper = None
        now, oldest = self.loop.time(), INF
        for key, stack in list(self.idle.items()):
            keep = []
            for c in stack:
                if c.closed:
                    continue
                if now - c.idle_since >= KEEPALIVE:
                    c.drop()
                else:
                    keep.append(c)
                    oldest = min(oldest, c.idle_since)
            if keep:
                self.idle[key] = keep
            else:
                del self.idle[key]
        if oldest < INF:
            self.sweeper = self.loop.call_at(oldest + KEEPALIVE, self.sweep)

    async def resolve(self, host: str, port: int) -> list[Any]:
        hit = self.dns.get((host, port))
        now = self.loop.time()
        if hit is not None and hit[0] > now:
            return hit[1]
        infos = await self.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        self.dns[(host, port)] = (now + DNS_TTL, infos)
        return infos

    async def connect(self, t: _Target, limit: float, tls: ssl.SSLContext | None) -> Conn:
        """A new connection (TCP, and TLS with SNI for https) within `limit` seconds."""
        global _default_tls
        if t.tls and tls is None:
            if _default_tls is None:
                _default_tls = ssl.create_default_context()
            tls = _default_tls
        try:
            async with asyncio.timeout(limit) as waiting:
                self.connecting.add(waiting)
                try:
                    err: OSError = OSError("no address")
                    for family, _, proto, _, addr in await self.resolve(t.host, t.port):
                        try:
                            _, conn = await self.loop.create_connection(
                                lambda: Conn(self, t.key), addr[0], addr[1], family=family, proto=proto,
                                ssl=tls if t.tls else None, server_hostname=t.host if t.tls else None)
                            return conn
                        except OSError as e:  # the next address (IPv6 then IPv4, several A records)
                            err = e
                    raise err
                finally:
                    self.connecting.discard(waiting)
        except TimeoutError:
            if _ending is not None:  # end_all cut the connect
                raise _ending() from None
            raise UpstreamUnavailable("upstream timed out before answering (connect)", timeout=True) from None
        except OSError as e:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            raise UpstreamUnavailable(f"upstream connection failed: {type(e).__name__}") from None

    def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
            self.sweeper = None
        for c in list(self.live):
            c.drop()
        self.idle.clear()


_pools: dict[asyncio.AbstractEventLoop, _Pool] = {}
_last: _Pool | None = None


def pool_for(loop: asyncio.AbstractEventLoop) -> _Pool:
    global _last
    p = _last
    if p is None or p.loop is not loop:
        p = _pools.get(loop)
        if p is None:
            for old in [lp for lp in _pools if lp.is_closed()]:  # tests run many loops in one process
                del _pools[old]
            p = _pools[loop] = _Pool(loop)
        _last = p
    return p


Body = bytes | tuple[bytes | memoryview, ...]  # bytes, or parts sent back to back (dialects/anthropic/body.py)


def body_size(data: Body) -> int:
    return len(data) if isinstance(data, bytes) else sum(map(len, data))  # map: no generator frame


# The headers a request gets when its caller left them out, in this order after the caller's (host and
# content-length first, their values per request).
_DEFAULTS = (("accept-encoding", "accept-encoding: identity\r\n"), ("accept", "accept: */*\r\n"),
             ("user-agent", "user-agent: orgate\r\n"), ("connection", "connection: keep-alive\r\n"))
_missing: dict[tuple[str, ...], tuple[bool, bool, str]] = {}


def _left_out(names: tuple[str, ...]) -> tuple[bool, bool, str]:
    """(host missing, content-length missing, the fixed default lines), per set of header names: an
    adapter sends the same names on every call, so the case-insensitive look is made once per set."""
    hit = _missing.get(names)
    if hit is None:
        have = {k.lower() for k in names}
        if len(_missing) > 256:
            _missing.clear()
        hit = _missing[names] = ("host" not in have, "content-length" not in have,
                                 "".join([line for name, line in _DEFAULTS if name not in have]))
    return hit


def request_head(t: _Target, size: int, headers: dict[str, str]) -> bytes:
    """Request line, the caller's headers exactly as given, then the ones it left out."""
    head = "".join([f"{k}: {v}\r\n" for k, v in headers.items()])
    n = len(headers)
    if head.count("\n") != n or head.count("\r") != n:  # a CR or LF inside a header: request splitting
        raise UpstreamUnavailable("upstream request refused: a header holds a line break")
    host, length, fixed = _left_out(tuple(headers))
    if length:
        fixed = f"content-length: {size}\r\n{fixed}"
    if host:
        fixed = f"host: {t.authority}\r\n{fixed}"
    return f"POST {t.path} HTTP/1.1\r\n{head}{fixed}\r\n".encode()


def send(transport: Any, head: bytes, data: Body, size: int) -> None:
    """Head and body in one write (one segment for a small request). A large body is not copied behind the
    head: writelines hands the buffers to one writev on uvloop, where a joined copy would be held for
    the whole request (256 concurrent 150 KB requests: ~38 MB); a spliced body (its parts around a new
    model id) is sent the same way, so it is not joined either."""
    parts = (data,) if isinstance(data, bytes) else data
    if size > BIG_BODY:
        transport.writelines((head, *parts))
    else:
        transport.write(b"".join((head, *parts)))


async def post(url: Any, data: Body, headers: dict[str, str], *, connect: float, read: float,
               idle: float | None = None, tls: ssl.SSLContext | None = None) -> Response:
    """POST over a pooled connection; see http.post for the timeouts. `tls` replaces the default context
    (tests with a self-signed certificate)."""
    if _ending is not None:
        raise _ending()
    loop = asyncio.get_running_loop()
    pool = pool_for(loop)
    t = target(url)
    size = body_size(data)
    head = request_head(t, size, headers)
    start = loop.time()
    deadline = start + read  # the headers, counted from the start (connection set-up included)
    conn = pool.checkout(t.key, start)
    while True:
        if conn is None:
            conn = await pool.connect(t, min(connect, read), tls)
        conn.begin()
        try:
            send(conn.transport, head, data, size)
        except RuntimeError:  # closed under us (uvloop refuses a write to a closing transport)
            conn.fail(Stale() if conn.reused else UpstreamUnavailable("upstream connection failed: closed"))
        try:
            while not conn.hdone:
                if conn.exc is not None:
                    raise conn.exc
                await conn.wait(deadline)
                if conn.timed_out:
                    raise UpstreamUnavailable("upstream timed out before answering", timeout=True)
        except Stale:
            conn.drop()
            conn = None
            continue
        except BaseException:  # failed, timed out, cut by end_all, cancelled (the client left): abandoned
            conn.drop()
            raise
        return Response(conn, read, idle)


def end_all(error: Callable[[], Exception]) -> int:
    """Every response still being read raises `error()` at its next read, every wait for headers or for a
    connection raises it now, and so does every later post. Returns how many were cut."""
    global _ending
    _ending = error
    n = 0
    p = _pools.get(asyncio.get_running_loop())  # the gateway's loop; a test's other loops are not ours to touch
    if p is not None:
        for c in list(p.live):
            if c.busy:
                c.exc = error()
                c.wake()
                n += 1
        now = p.loop.time()
        for w in list(p.connecting):
            w.reschedule(now)
        n += len(p.connecting)
    return n


async def close() -> None:
    """Close every connection (app shutdown; tests) and forget the shutdown state."""
    global _ending, _last
    _ending = None
    loop = asyncio.get_running_loop()
    p = _pools.pop(loop, None)
    if _last is p:
        _last = None
    if p is not None:
        p.close()
        await asyncio.sleep(0)  # let the transports report connection_lost
