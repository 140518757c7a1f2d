"""A small HTTP/1.1 client on raw asyncio sockets that timestamps the first and last byte of each response.

It sends N requests one after another on one keep-alive connection, and for each records (from the moment
the request's last byte is written): the first response byte (status line), the first body byte (for a
stream: the first event) and the last body byte, plus the number of SSE events seen. It understands
Content-Length and chunked bodies, which covers nginx (the fake upstream), uvicorn and LiteLLM.
"""

from __future__ import annotations

import asyncio
import time


class Timing:
    __slots__ = ("status", "first_byte", "first_body", "last_byte", "events", "body_bytes")

    def __init__(self) -> None:
        self.status = 0
        self.first_byte = self.first_body = self.last_byte = 0.0
        self.events = 0
        self.body_bytes = 0


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> Timing:
    t = Timing()
    writer.write(request)
    await writer.drain()
    t0 = time.perf_counter()
    buf = bytearray()
    # status line + headers
    while b"\r\n\r\n" not in buf:
        data = await reader.read(65536)
        if not data:
            raise ConnectionError("connection closed before headers")
        if not t.first_byte:
            t.first_byte = time.perf_counter() - t0
        buf += data
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    t.status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
    body = bytearray()
    now = time.perf_counter() - t0
    if "content-length" in headers:
        n = int(headers["content-length"])
        body += rest
        if body:
            t.first_body = now
        while len(body) < n:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("connection closed mid-body")
            if not t.first_body:
                t.first_body = time.perf_counter() - t0
            body += data
        t.last_byte = time.perf_counter() - t0
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        pending = bytearray(rest)
        if pending:
            t.first_body = now
        while True:
            # parse as many whole chunks as are buffered
            done = False
            while True:
                i = pending.find(b"\r\n")
                if i < 0:
                    break
                size = int(bytes(pending[:i]).split(b";")[0], 16)
                if len(pending) < i + 2 + size + 2:
                    break
                body += pending[i + 2 : i + 2 + size]
                del pending[: i + 2 + size + 2]
                if size == 0:
                    done = True
                    break
            if done:
                break
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("connection closed mid-chunked-body")
            if not t.first_body:
                t.first_body = time.perf_counter() - t0
            pending += data
        t.last_byte = time.perf_counter() - t0
    else:
        raise ValueError(f"response without length framing: {headers}")
    t.body_bytes = len(body)
    t.events = body.count(b"\n\n")
    if headers.get("connection", "").lower() == "close":
        raise ConnectionResetError("server closed the connection")
    return t


def build_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    h = {"host": f"{host}:{port}", "content-type": "application/json", "content-length": str(len(body)),
         "accept": "text/event-stream, application/json", **headers}
    return (f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode() + body


async def run(host: str, port: int, path: str, body: bytes, headers: dict[str, str], n: int,
              warmup: int = 5, timeout: float = 30.0) -> list[Timing]:
    request = build_request(host, port, path, body, headers)
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 24)
    out: list[Timing] = []
    try:
        for i in range(n + warmup):
            try:
                t = await asyncio.wait_for(_one(reader, writer, request), timeout)
            except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
                writer.close()
                reader, writer = await asyncio.open_connection(host, port, limit=1 << 24)
                continue
            if i >= warmup:
                out.append(t)
    finally:
        writer.close()
    return out


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def summarize(timings: list[Timing]) -> dict:
    ok = [t for t in timings if 200 <= t.status < 300]
    fb = [t.first_body * 1000 for t in ok]
    lb = [t.last_byte * 1000 for t in ok]
    return {
        "n": len(timings), "ok": len(ok),
        "ttfb_ms": {"p50": round(pct(fb, 50), 3), "p90": round(pct(fb, 90), 3), "p99": round(pct(fb, 99), 3)},
        "last_byte_ms": {"p50": round(pct(lb, 50), 3), "p90": round(pct(lb, 90), 3), "p99": round(pct(lb, 99), 3)},
        "events_p50": sorted(t.events for t in ok)[len(ok) // 2] if ok else 0,
    }
