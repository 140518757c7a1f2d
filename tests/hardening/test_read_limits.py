"""Findings 4 and 5 against a real orgate on a real port, over raw sockets (what a hostile client sends)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.gateway import Gateway

LIMITS = {"ORGATE_SERVER__HEADER_TIMEOUT_SECONDS": "1", "ORGATE_SERVER__BODY_WINDOW_SECONDS": "1",
          "ORGATE_SERVER__MAX_CONNECTIONS": "40", "ORGATE_SERVER__MAX_HEADERS": "50"}


@pytest.fixture(scope="module")
def gw(fresh_gateway) -> Gateway:
    return fresh_gateway(**LIMITS)


def _conn(gw: Gateway) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    return s


class StillOpen(AssertionError):
    pass


def _answer(s: socket.socket, timeout: float = 10) -> bytes:
    """Everything the server sends until it closes the connection; StillOpen when it has not within `timeout`."""
    s.settimeout(timeout)
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise StillOpen(f"connection still open after {timeout} s; received {out[:200]!r}") from None
    return out


def _ok(gw: Gateway) -> None:
    assert httpx.get(gw.url + "/health", timeout=10).status_code == 200


def test_oversized_header_refused_before_it_is_buffered(gw):
    s = _conn(gw)
    s.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nx-big: ")
    sent = 0
    try:
        while sent < 8 * 1024 * 1024:  # keep sending: the server must cut us off long before 8 MB
            s.sendall(b"a" * 65536)
            sent += 65536
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = _answer(s)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert sent < 8 * 1024 * 1024 or answer
    _ok(gw)


def test_too_many_headers_refused(gw):
    s = _conn(gw)
    s.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n" + b"".join(b"x-h%d: v\r\n" % i for i in range(60)) + b"\r\n")
    assert _answer(s).startswith(b"HTTP/1.1 431")


@pytest.mark.parametrize("first", [b"", b"POST /v1/messages HTTP/1.1\r\nhost: x\r\n"])
def test_slow_or_missing_headers_are_closed(gw, first):
    s = _conn(gw)
    s.sendall(first)
    answer = _answer(s, timeout=15)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_body_that_stops_or_lies_about_its_length_is_closed(gw):
    key = gw.create_key("slow-body")
    s = _conn(gw)
    s.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: " + key.encode() +
              b"\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{\"model\": ")
    answer = _answer(s, timeout=15)  # closed, with a 408 (or nothing if the response had started)
    assert answer == b"" or (answer.startswith(b"HTTP/1.1 408") and b"too slowly" in answer), answer[:200]
    _ok(gw)


def test_connection_cap_refuses_clearly_and_recovers(gw):
    idle = [_conn(gw) for _ in range(45)]
    try:
        refused = 0
        for s in idle[40:]:
            a = _answer(s, timeout=5)
            if a.startswith(b"HTTP/1.1 503"):
                refused += 1
                assert b"retry-after: 1" in a and b"x-should-retry: true" in a
        assert refused >= 5
    finally:
        for s in idle:
            s.close()
    time.sleep(0.5)  # let the server see the closes
    _ok(gw)


def test_key_checked_before_the_body_is_read(gw):
    """Finding 5: no key, a declared 32 MB body never sent: the 401 comes at once and the connection closes."""
    for path in (b"/v1/messages", b"/v1/chat/completions", b"/v1/responses"):
        s = _conn(gw)
        s.sendall(b"POST " + path + b" HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                  b"x-api-key: sk-ant-not-a-key\r\ncontent-length: 33554432\r\n\r\n")
        answer = _answer(s, timeout=5)
        assert answer.startswith(b"HTTP/1.1 401"), (path, answer[:200])
        assert b"connection: close" in answer.lower()
        is_openai = path != b"/v1/messages"
        assert (b'"type":"authentication_error"' in answer) != is_openai or b'"error":{' in answer
