"""The request head's defaults and a stream's chunk iterator (pool.py, pool_response.py): issue 18's cheaper
plumbing keeps the bytes on the wire and the iteration's behaviour exactly as before."""

from __future__ import annotations

import asyncio
import sys

import pytest
from yarl import URL

from orgate.errors import UpstreamUnavailable
from orgate.upstreams import pool
from tests.upstreams.test_pool import replies, serve  # noqa: F401  (fixture)

T = pool.target("http://example.test:8080/v1/messages")

SSE = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 20\r\n\r\n"
       b"event: a\ndata: {}\n\n\n")


def test_request_head_adds_every_default_in_order_after_the_callers_headers():
    head = pool.request_head(T, 7, {"content-type": "application/json", "X-Mixed": "v"})
    assert head == (b"POST /v1/messages HTTP/1.1\r\ncontent-type: application/json\r\nX-Mixed: v\r\n"
                    b"host: example.test:8080\r\ncontent-length: 7\r\naccept-encoding: identity\r\n"
                    b"accept: */*\r\nuser-agent: orgate\r\nconnection: keep-alive\r\n\r\n")


def test_request_head_never_doubles_a_header_the_caller_gave_in_any_case():
    given = {"Host": "signed", "Content-Length": "3", "ACCEPT-ENCODING": "gzip", "Accept": "x",
             "User-Agent": "me", "Connection": "close"}
    for _ in range(2):  # the second time from the per-name-set cache
        head = pool.request_head(T, 99, given).decode()
        assert head == "POST /v1/messages HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in given.items()) + "\r\n"
    # the same names in another case are another set: looked at again, not taken from the cache
    assert b"host: example.test" in pool.request_head(T, 1, {"x": "1"})
    assert pool.request_head(T, 5, {"host": "h"}).count(b"content-length: 5\r\n") == 1


def test_request_head_still_refuses_a_line_break():
    with pytest.raises(UpstreamUnavailable):
        pool.request_head(T, 1, {"x": "a\r\nb: c"})


def test_signed_url_target_is_taken_as_is():
    t = pool.target(URL("http://h/model/a%3A0/invoke", encoded=True))
    assert pool.request_head(t, 0, {}).startswith(b"POST /model/a%3A0/invoke HTTP/1.1\r\nhost: h\r\n")


async def test_stream_iterator_is_no_async_generator_and_ends_cleanly(serve):  # noqa: F811
    s = await serve(replies(SSE))
    seen: list[object] = []
    old = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=seen.append, finalizer=old.finalizer)
    try:
        resp = await pool.post(s.url(), b"{}", {}, connect=5, read=5, idle=5)
        it = resp.iter_chunks()
        assert it.__aiter__() is it
        assert [c async for c in it] == [b"event: a\ndata: {}\n\n\n"]
        with pytest.raises(StopAsyncIteration):  # ended: stays ended
            await it.__anext__()
    finally:
        sys.set_asyncgen_hooks(*old)
    assert seen == []  # the loop's per-generator bookkeeping is not paid
    resp2 = await pool.post(s.url(), b"{}", {}, connect=5, read=5, idle=5)
    await resp2.read()
    assert s.accepted == 1  # read to its end: the connection went back to the pool


async def test_stream_first_chunk_timeout_then_iteration_is_over(serve):  # noqa: F811
    async def silent(req, r, w):
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        await w.drain()
        await asyncio.sleep(1)
        return False

    s = await serve(silent)
    resp = await pool.post(s.url(), b"{}", {}, connect=5, read=0.1, idle=5)
    it = resp.iter_chunks()
    with pytest.raises(UpstreamUnavailable, match="before its first chunk"):
        await it.__anext__()
    with pytest.raises(StopAsyncIteration):
        await it.__anext__()


async def test_relayed_headers_are_picked_while_parsing_exactly_as_relayed_would(serve):  # noqa: F811
    from types import SimpleNamespace

    from orgate.server.render import answer_headers
    from orgate.upstreams.base import relayed

    head = (b"HTTP/1.1 100 Continue\r\nrequest-id: interim\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nServer: x\r\nRequest-Id: req_1\r\nAnthropic-RateLimit-Requests-Limit: 50\r\n"
            b"retry-after: 3 \r\nx-should-retry: true\r\nanthropic-ratelimit-requests-limit: 60\r\n"
            b"anthropic-organization-id: o\r\ncontent-length: 2\r\n\r\nok")
    s = await serve(replies(head))
    resp = await pool.post(s.url(), b"{}", {}, connect=5, read=5)
    assert resp.relay == relayed(resp.headers) == {
        "request-id": "req_1", "anthropic-ratelimit-requests-limit": "60", "retry-after": "3 ",
        "x-should-retry": "true"}
    assert list(resp.relay) == list(relayed(resp.headers))  # the upstream's order
    opened = SimpleNamespace(response=resp, target=SimpleNamespace(provider="anthropic"))
    out = answer_headers("rid", opened)
    assert out == {**relayed(resp.headers), "x-request-id": "rid", "x-orgate-provider": "anthropic"}
    assert resp.relay == relayed(resp.headers)  # the answer's own headers were added to a copy
    await resp.read()


async def test_a_reused_connection_keeps_its_timer_and_still_times_out(serve):  # noqa: F811
    import time

    from tests.upstreams.test_pool import OK

    count = [0]

    async def answer(req, r, w):
        count[0] += 1
        if count[0] in (3, 6):  # silent: the first-byte limit must still end the wait
            await asyncio.sleep(1.0)
            return False
        w.write(OK)
        await w.drain()
        return True

    s = await serve(answer)
    timers = []
    for _ in range(2):
        resp = await pool.post(s.url(), b"{}", {}, connect=5, read=0.3)
        assert await resp.read() == b"ok"
        (conn,) = pool.pool_for(asyncio.get_running_loop()).idle[pool.target(s.url()).key]
        timers.append(conn.timer)  # held: a cancelled handle's id cannot be reused for another
    assert timers[0] is not None and timers[0] is timers[1]  # one timer for both exchanges, not one each
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="timed out"):
        await pool.post(s.url(), b"{}", {}, connect=5, read=0.3)
    assert 0.25 < time.monotonic() - started < 0.9
    # a timer that fired while the connection sat idle is gone; the next exchange arms its own
    resp = await pool.post(s.url(), b"{}", {}, connect=5, read=0.1)
    assert await resp.read() == b"ok"
    await asyncio.sleep(0.2)
    resp = await pool.post(s.url(), b"{}", {}, connect=5, read=0.2)
    assert await resp.read() == b"ok"
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="timed out"):
        await pool.post(s.url(), b"{}", {}, connect=5, read=0.3)
    assert 0.25 < time.monotonic() - started < 0.9


def test_header_names_are_looked_up_once_and_the_cache_stays_bounded():
    from orgate.upstreams import pool_conn

    assert pool_conn.header_name(b"Anthropic-RateLimit-Tokens-Remaining") == ("anthropic-ratelimit-tokens-remaining", True)
    assert pool_conn._names.get(b"Anthropic-RateLimit-Tokens-Remaining") == ("anthropic-ratelimit-tokens-remaining", True)
    assert pool_conn.header_name(b"X-\xc0") == ("x-\xe0", False)  # latin-1, lowered as before
    assert pool_conn.header_name(b"Request-ID") == ("request-id", True)
    for i in range(pool_conn.NAMES_MAX * 2):
        pool_conn.header_name(b"x-unique-%d" % i)
    assert len(pool_conn._names) <= pool_conn.NAMES_MAX
