"""The lean upstream client (orgate/upstreams/pool.py) against small real servers writing exact HTTP bytes."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import ipaddress
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio

from orgate.errors import UpstreamUnavailable
from orgate.upstreams import http, pool

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\nok"
Answer = Callable[["Request", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


class Request:
    def __init__(self, head: bytes, body: bytes, conn: int) -> None:
        self.head, self.body, self.conn = head, body, conn
        self.line, *lines = head.decode("latin-1").split("\r\n")
        self.headers = [tuple(x.split(": ", 1)) for x in lines if x]


class Server:
    """Answers each request with `answer` (True: keep the connection); counts accepted connections."""

    def __init__(self, answer: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answer, self.tls = answer, tls
        self.accepted = 0
        self.requests: list[Request] = []
        self.ended: list[int] = []  # connections on which the client closed its side

    async def start(self) -> Server:
        self.srv = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.srv.sockets[0].getsockname()[1]
        return self

    def url(self, path: str = "/v1/messages") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.accepted += 1
        n = self.accepted
        try:
            while True:
                try:
                    head = await r.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.ended.append(n)
                    return
                length = next(int(v) for k, v in Request(head, b"", n).headers if k.lower() == "content-length")
                req = Request(head, await r.readexactly(length), n)
                self.requests.append(req)
                if not await self.answer(req, r, w):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            w.close()

    async def stop(self) -> None:
        self.srv.close()


@pytest.fixture(params=["asyncio", "uvloop"], scope="module")
def event_loop_policy(request):
    """Every case on both loops: the gateway serves on uvloop, whose transports differ in the details."""
    import uvloop

    return uvloop.EventLoopPolicy() if request.param == "uvloop" else asyncio.DefaultEventLoopPolicy()


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    servers: list[Server] = []

    async def make(answer: Answer, tls: ssl.SSLContext | None = None) -> Server:
        servers.append(await Server(answer, tls).start())
        return servers[-1]

    yield make
    await http.close_session()
    for s in servers:
        await s.stop()


def replies(*raw: bytes, keep: bool = True) -> Answer:
    """Writes raw[i] for the i-th request (the last one again after that)."""
    count = [0]

    async def answer(req: Request, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(raw[min(count[0], len(raw) - 1)])
        count[0] += 1
        await w.drain()
        return keep

    return answer


async def post(url: str, **kw: object) -> pool.Response:
    kw.setdefault("connect", 5.0)
    kw.setdefault("read", 5.0)
    return await http.post(url, b'{"a":1}', {"content-type": "application/json", "X-Mixed-Case": "Value"}, **kw)  # type: ignore[arg-type,return-value]


async def test_keep_alive_reuses_one_connection_and_writes_the_request_as_given(serve):
    s = await serve(replies(OK))
    for _ in range(3):
        resp = await post(s.url("/v1/messages?beta=true"))
        assert (resp.status, await resp.read()) == (200, b"ok")
        assert resp.headers["content-type"] == "application/json"
    assert s.accepted == 1 and len(s.requests) == 3
    req = s.requests[0]
    assert req.line == "POST /v1/messages?beta=true HTTP/1.1"
    assert ("X-Mixed-Case", "Value") in req.headers and ("content-type", "application/json") in req.headers
    assert ("host", f"127.0.0.1:{s.port}") in req.headers and ("content-length", "7") in req.headers
    assert ("accept-encoding", "identity") in req.headers and req.body == b'{"a":1}'


async def test_encoded_path_goes_on_the_wire_byte_for_byte(serve):
    from yarl import URL

    s = await serve(replies(OK))
    resp = await http.post(URL(s.url("/model/anthropic.x-v1%3A0/invoke"), encoded=True), b"{}", {"host": "signed"},
                           connect=5, read=5)
    await resp.read()
    assert s.requests[0].line == "POST /model/anthropic.x-v1%3A0/invoke HTTP/1.1"
    assert ("host", "signed") in s.requests[0].headers  # the caller's (signed) host, not a second one
    assert sum(1 for k, _ in s.requests[0].headers if k.lower() == "host") == 1


async def test_chunked_body_is_dechunked_and_the_connection_reused(serve):
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    s = await serve(replies(chunked))
    assert await (await post(s.url())).read() == b"hello world"
    resp = await post(s.url())
    assert b"".join([c async for c in resp.iter_chunks()]) == b"hello world"
    assert s.accepted == 1


async def test_body_read_until_close_then_a_new_connection(serve):
    s = await serve(replies(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end", keep=False))
    assert await (await post(s.url())).read() == b"until the end"
    assert await (await post(s.url())).read() == b"until the end"
    assert s.accepted == 2


async def test_connection_close_and_http10_are_not_reused(serve):
    s = await serve(replies(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
                            b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", OK))
    for _ in range(3):
        assert await (await post(s.url())).read() == b"ok"
    assert s.accepted == 3


@pytest.mark.parametrize("encoding,pack", [("gzip", gzip.compress), ("deflate", zlib.compress),
                                           ("deflate", lambda b: zlib.compress(b, wbits=-15))])
async def test_compressed_body_is_decoded(serve, encoding, pack):
    payload = b'{"text": "' + b"abc" * 5000 + b'"}'
    packed = pack(payload)
    raw = b"HTTP/1.1 200 OK\r\ncontent-encoding: %s\r\ncontent-length: %d\r\n\r\n%s" % (encoding.encode(), len(packed), packed)
    s = await serve(replies(raw))
    assert await (await post(s.url())).read() == payload
    resp = await post(s.url(), idle=5.0)
    assert b"".join([c async for c in resp.iter_chunks()]) == payload


async def test_stream_chunks_are_the_upstream_bytes(serve):
    events = [b"event: ping\ndata: {}\n\n", b"event: message_stop\ndata: {\"x\": \"\xc3\xa9\"}\n\n"]

    async def answer(req, r, w):
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for e in events:
            w.write(b"%x\r\n%s\r\n" % (len(e), e))
            await w.drain()
            await asyncio.sleep(0.01)
        w.write(b"0\r\n\r\n")
        return True

    s = await serve(answer)
    resp = await post(s.url(), idle=5.0)
    assert b"".join([c async for c in resp.iter_chunks()]) == b"".join(events)


async def test_server_closing_an_idle_connection_then_a_request_succeeds(serve):
    s = await serve(replies(OK, keep=False))  # answers without `connection: close`, then closes
    assert await (await post(s.url())).read() == b"ok"
    await asyncio.sleep(0.05)
    assert await (await post(s.url())).read() == b"ok"
    assert s.accepted == 2


async def test_stale_kept_alive_connection_is_retried_once_on_a_fresh_one(serve):
    """The server closes a kept-alive connection as the next request arrives (no byte answered): the request
    goes again on a new connection."""
    async def answer(req, r, w):
        if req.conn == 1 and len(s.requests) == 2:
            return False  # close without a byte
        w.write(OK)
        return True

    s = await serve(answer)
    assert await (await post(s.url())).read() == b"ok"
    assert await (await post(s.url())).read() == b"ok"
    assert s.accepted == 2 and [r.conn for r in s.requests] == [1, 1, 2]


async def test_no_retry_once_a_response_byte_arrived(serve):
    async def answer(req, r, w):
        w.write(OK if len(s.requests) == 1 else b"HTTP/1.1 200")
        await w.drain()
        return len(s.requests) == 1

    s = await serve(answer)
    await (await post(s.url())).read()
    with pytest.raises(UpstreamUnavailable) as e:
        await post(s.url())
    assert e.value.status == 502 and len(s.requests) == 2


async def test_server_dying_mid_body_fails_and_the_connection_is_not_reused(serve):
    s = await serve(replies(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789", OK, keep=False))
    resp = await post(s.url())
    with pytest.raises(UpstreamUnavailable) as e:
        await resp.read()
    assert e.value.status == 502
    assert await (await post(s.url())).read() == b"ok"
    assert s.accepted == 2


async def hang(req, r, w):
    await asyncio.sleep(30)
    return False


async def test_first_byte_timeout(serve):
    s = await serve(hang)
    with pytest.raises(UpstreamUnavailable) as e:
        await post(s.url(), read=0.2)
    assert e.value.status == 504 and "before answering" in str(e.value)


async def test_connect_timeout_covers_the_tls_handshake(serve):
    s = await serve(hang)  # a plain TCP server: the TLS handshake never completes
    with pytest.raises(UpstreamUnavailable) as e:
        await post(s.url().replace("http:", "https:"), connect=0.2, read=30)
    assert e.value.status == 504 and "connect" in str(e.value)


async def test_connection_refused_is_unavailable(serve):
    s = await serve(replies(OK))
    await s.stop()
    s.srv.close()
    await s.srv.wait_closed()
    with pytest.raises(UpstreamUnavailable) as e:
        await post(s.url())
    assert e.value.status == 502 and "connection failed" in str(e.value)


def stalling(head: bytes, *sent: bytes) -> Answer:
    async def answer(req, r, w):
        w.write(head)
        for c in sent:
            w.write(c)
        await w.drain()
        await asyncio.sleep(30)
        return False

    return answer


async def test_json_body_read_timeout(serve):
    s = await serve(stalling(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n", b"01"))
    resp = await post(s.url(), read=0.2)
    with pytest.raises(UpstreamUnavailable) as e:
        await resp.read()
    assert e.value.status == 504


SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


async def test_stream_first_chunk_and_idle_timeouts(serve):
    s = await serve(stalling(SSE_HEAD))
    resp = await post(s.url(), read=0.2, idle=30)
    with pytest.raises(UpstreamUnavailable) as e:
        async for _ in resp.iter_chunks():
            pass
    assert e.value.status == 504 and "before its first chunk" in str(e.value)

    s = await serve(stalling(SSE_HEAD, b"5\r\nfirst\r\n"))
    resp = await post(s.url(), read=30, idle=0.2)
    got = []
    with pytest.raises(UpstreamUnavailable) as e:
        async for c in resp.iter_chunks():
            got.append(c)
    assert got == [b"first"] and e.value.status == 504 and "between events" in str(e.value)


async def test_aclose_mid_stream_closes_the_connection(serve):
    s = await serve(stalling(SSE_HEAD, b"5\r\nfirst\r\n"))
    resp = await post(s.url(), idle=30)
    it = resp.iter_chunks().__aiter__()
    assert await it.__anext__() == b"first"
    await resp.aclose()
    for _ in range(100):
        if s.ended or not pool.pool_for(asyncio.get_running_loop()).live:
            break
        await asyncio.sleep(0.01)
    assert not pool.pool_for(asyncio.get_running_loop()).live  # closed, not pooled
    assert not any(pool.pool_for(asyncio.get_running_loop()).idle.values())


async def test_end_all_cuts_reads_header_waits_and_later_posts(serve):
    class Bye(Exception):
        pass

    streaming = await serve(stalling(SSE_HEAD, b"5\r\nfirst\r\n"))
    silent = await serve(hang)
    resp = await post(streaming.url(), idle=30)
    it = resp.iter_chunks().__aiter__()
    assert await it.__anext__() == b"first"
    waiting = asyncio.ensure_future(post(silent.url(), read=30))
    while not silent.requests:
        await asyncio.sleep(0.01)
    assert http.end_all(Bye) == 2
    with pytest.raises(Bye):
        await waiting
    with pytest.raises(Bye):
        await it.__anext__()
    with pytest.raises(Bye):
        await post(streaming.url())
    await http.close_session()  # a later app starts clean
    ok = await serve(replies(OK))
    assert await (await post(ok.url())).read() == b"ok"


def self_signed() -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


async def test_tls_with_sni_and_verification(serve, tmp_path):
    cert, key = self_signed()
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    names: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: names.append(name)
    s = await serve(replies(OK), tls=server_ctx)
    url = f"https://localhost:{s.port}/v1/messages"
    client_ctx = ssl.create_default_context(cadata=cert.decode())
    for _ in range(2):
        resp = await pool.post(url, b"{}", {}, connect=5, read=5, tls=client_ctx)
        assert await resp.read() == b"ok"
    assert names == ["localhost"] and s.accepted == 1
    await http.close_session()
    with pytest.raises(UpstreamUnavailable) as e:  # the default context does not trust a self-signed certificate
        await http.post(url, b"{}", {}, connect=5, read=5)
    assert "connection failed" in str(e.value)


async def test_slow_consumer_pauses_reading_and_stays_bounded(serve):
    body = bytes(range(256)) * (16 * 1024)  # 4 MiB
    s = await serve(replies(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)))
    resp = await post(s.url(), idle=5.0)
    it = resp.iter_chunks().__aiter__()
    got = [await it.__anext__()]
    conn = resp._c
    await asyncio.sleep(0.3)  # the server has written everything it can: the client stopped reading
    assert conn.paused and conn.size <= pool.HIGH_WATER + 512 * 1024
    async for c in it:
        got.append(c)
    assert b"".join(got) == body and s.accepted == 1
    assert await (await post(s.url())).read() == body  # read to the end: the connection went back to the pool
    assert s.accepted == 1


async def test_a_line_break_in_a_header_is_refused(serve):
    s = await serve(replies(OK))
    with pytest.raises(UpstreamUnavailable):
        await http.post(s.url(), b"{}", {"x-test": "a\r\nx-injected: 1"}, connect=5, read=5)
    assert not s.requests


async def test_through_the_operator_proxy_aiohttp_is_used(serve, monkeypatch):
    """With HTTPS_PROXY set the request goes to the proxy (absolute-form request line for http://)."""
    proxy = await serve(replies(OK))
    monkeypatch.setattr(http, "_PROXY", proxy.url("").rstrip("/"))
    monkeypatch.setattr(http, "_BYPASS", {})
    resp = await http.post("http://upstream.invalid/v1/messages", b"{}", {}, connect=5, read=5)
    assert await resp.read() == b"ok"
    assert proxy.requests[0].line == "POST http://upstream.invalid/v1/messages HTTP/1.1"


async def test_bytes_after_the_response_are_not_taken_for_it_and_the_connection_is_not_reused(serve):
    s = await serve(replies(OK + b"HTTP/1.1 500 Oops\r\ncontent-length: 4\r\n\r\nboom", OK))
    resp = await post(s.url())
    assert (resp.status, await resp.read()) == (200, b"ok")
    assert await (await post(s.url())).read() == b"ok"
    assert s.accepted == 2


async def test_a_large_request_body_arrives_whole(serve):
    body = b'{"messages": "' + bytes(range(97, 123)) * 8000 + b'"}'  # ~200 KB: head and body written apart
    s = await serve(replies(OK))
    for data in (body, b"{}"):
        resp = await http.post(s.url(), data, {"content-type": "application/json"}, connect=5, read=5)
        assert await resp.read() == b"ok"
    assert [r.body for r in s.requests] == [body, b"{}"] and s.accepted == 1
    assert ("content-length", str(len(body))) in s.requests[0].headers


@pytest.mark.parametrize("size", [100, 200_000])
async def test_a_body_in_parts_arrives_as_their_concatenation(serve, size):
    """A spliced body (views of the client's bytes around a new model id) is written without being joined
    first, small or large; the upstream reads exactly the joined bytes and their total length."""
    s = await serve(replies(OK))
    raw = b'{"model":"alias","messages":"' + bytes(range(97, 123)) * (size // 26) + b'"}'
    at = raw.index(b'"alias"')
    view = memoryview(raw)
    parts = (view[:at], b'"claude-upstream-id"', view[at + len(b'"alias"'):])
    resp = await http.post(s.url(), parts, {"content-type": "application/json"}, connect=5.0, read=5.0)
    assert (resp.status, await resp.read()) == (200, b"ok")
    want = b"".join(parts)
    assert s.requests[0].body == want
    assert ("content-length", str(len(want))) in s.requests[0].headers
