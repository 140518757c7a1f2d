"""The HTTP client every upstream shares: pool.py's lean keep-alive client for direct connections; aiohttp
(proxied.py, CONNECT tunnelling) only when the operator's HTTPS proxy applies to the URL.

Timeouts, as configured per provider (`timeouts: {connect, first_byte, idle}`) or in `routing`:
connect bounds the TCP/TLS handshake; first_byte bounds the wait for the response headers (counted from the
start of the request) and, on a stream, its first chunk (a JSON answer arrives whole, so for it first_byte bounds each read of the body); idle bounds
the silence between two chunks of a stream (Anthropic pings every few seconds, so a long idle means a hang).
A timeout becomes UpstreamUnavailable(timeout=True): 504 before the first byte, an error event after it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from orgate.upstreams import pool
from orgate.upstreams.base import UpstreamResponse

HttpResponse = UpstreamResponse  # what post returns: pool.Response, or proxied.AioResponse through a proxy

_ending: Callable[[], Exception] | None = None
_PROXIED = "orgate.upstreams.proxied"


def _proxy_from_env() -> str | None:
    """The operator's HTTPS proxy (corporate egress), read once at startup.

    aiohttp's trust_env=True re-reads the environment and ~/.netrc in a thread pool on every request: about
    a fifth of the gateway's CPU per request in the benchmark profile. Reading it once gives the same proxy.
    """
    import os
    import urllib.request

    proxies = urllib.request.getproxies()
    return proxies.get("https") or proxies.get("http") or os.environ.get("HTTPS_PROXY") or None


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
    global _ending
    await pool.close()
    if _PROXIED in sys.modules:
        await sys.modules[_PROXIED].close()
    _ending = None  # a later app in this process (tests) starts clean


def end_all(error: Callable[[], Exception]) -> int:
    """At the end of the shutdown grace: every response still being read raises `error()` at its next read
    (the relays then end their streams with the dialect's error event), a request still waiting for its
    answer raises it now, and so does every later one. Returns how many were cut."""
    global _ending
    _ending = error
    cut = pool.end_all(error)
    if _PROXIED in sys.modules:
        cut += sys.modules[_PROXIED].end_all(error)
    return cut


async def post(url: Any, data: pool.Body, headers: dict[str, str], *, connect: float, read: float,
               idle: float | None = None, **kw: Any) -> HttpResponse:
    """POST; `read` is the first-byte limit, `idle` (streams only) the limit between chunks after it."""
    if _ending is not None:
        raise _ending()
    proxy = proxy_for(url)
    if proxy is None:
        return await pool.post(url, data, headers, connect=connect, read=read, idle=idle)
    from orgate.upstreams import proxied

    if not isinstance(data, bytes):
        data = b"".join(data)
    return await proxied.post(url, data, headers, proxy, connect=connect, read=read, idle=idle, **kw)
