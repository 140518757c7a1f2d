"""The one pooled HTTP client every upstream shares (aiohttp: C parser, keep-alive, no per-call setup)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from orgate.errors import UpstreamUnavailable

_session: aiohttp.ClientSession | None = None


def session() -> aiohttp.ClientSession:
    global _session
    if _session is None or _session.closed:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
        # auto_decompress off: we relay bytes; we ask upstreams for identity encoding anyway.
        _session = aiohttp.ClientSession(connector=connector, auto_decompress=True, trust_env=True)
    return _session


async def close_session() -> None:
    global _session
    if _session is not None and not _session.closed:
        await _session.close()
    _session = None


class HttpResponse:
    """An aiohttp response seen through the UpstreamResponse protocol."""

    __slots__ = ("_resp", "status", "headers", "_idle")

    def __init__(self, resp: aiohttp.ClientResponse, headers: dict[str, str] | None = None) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers = headers if headers is not None else {k.lower(): v for k, v in resp.headers.items()}

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except (aiohttp.ClientError, TimeoutError) as e:
            raise UpstreamUnavailable(f"upstream read failed: {type(e).__name__}", timeout=isinstance(e, TimeoutError)) from None
        finally:
            self._resp.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as e:
            raise UpstreamUnavailable(f"upstream stream failed: {type(e).__name__}", timeout=isinstance(e, TimeoutError)) from None

    async def aclose(self) -> None:
        self._resp.close()


async def post(url: str, data: bytes, headers: dict[str, str], *, connect: float, read: float, **kw: Any) -> HttpResponse:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)
    try:
        resp = await session().post(url, data=data, headers=headers, timeout=timeout, **kw)
    except TimeoutError:
        raise UpstreamUnavailable("upstream timed out before answering", timeout=True) from None
    except aiohttp.ClientError as e:
        raise UpstreamUnavailable(f"upstream connection failed: {type(e).__name__}") from None
    return HttpResponse(resp)
