"""SIGTERM with streams longer than the grace: each ends with its dialect's error, its row is written, orgate exits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from orgate.core.sse import SSEFramer
from tests import pg
from tests.fakes.anthropic_fake import FakeAnthropic, Reply
from tests.gateway import Gateway
from tests.hardening.conftest import DATABASES

LONG = Reply(blocks=[{"type": "text", "text": "a long answer, one small delta every tenth of a second " * 4}],
             event_delay=0.1)  # ~35 deltas: ~4 s, far longer than the 1 s grace
SURFACES = {
    "anthropic": ("/v1/messages", {"max_tokens": 256}),
    "chat": ("/v1/chat/completions", {}),
    "responses": ("/v1/responses", {}),
}


@pytest.fixture(params=DATABASES)
def slow_upstream_gateway(request) -> Iterator[tuple[Gateway, FakeAnthropic]]:
    fake = FakeAnthropic()
    fake.start()
    with pg.database_url(request.param) as url:
        gw = Gateway(fake.url, database_url=url, env={"ORGATE_SERVER__SHUTDOWN_GRACE_SECONDS": "1"}).start()
        try:
            yield gw, fake
        finally:
            gw.stop()
            fake.stop()


def _stream(gw: Gateway, key: str, surface: str, out: dict[str, object], started: threading.Event) -> None:
    path, extra = SURFACES[surface]
    body = {"model": "claude-sonnet-4.5", "stream": True, **extra}
    if surface == "responses":
        body["input"] = "hi"
    else:
        body["messages"] = [{"role": "user", "content": "hi"}]
    got = b""
    try:
        with httpx.stream("POST", gw.url + path, json=body, timeout=30, headers={
                "x-api-key": key, "authorization": "Bearer " + key, "anthropic-version": "2023-06-01"}) as r:
            out[surface + ":id"] = r.headers["x-request-id"]
            for chunk in r.iter_raw():
                got += chunk
                started.set()
    except httpx.HTTPError as e:  # a cut connection
        out[surface + ":cut"] = repr(e)
    out[surface] = got


def _events(body: bytes) -> list[tuple[str, bytes]]:
    f = SSEFramer()
    return f.feed(body) + f.finish()


def test_streams_longer_than_the_grace_end_with_an_error_and_are_recorded(slow_upstream_gateway):
    gw, fake = slow_upstream_gateway
    key = gw.create_key("drain")
    fake.default = LONG
    out: dict[str, object] = {}
    threads = []
    for surface in SURFACES:
        started = threading.Event()
        t = threading.Thread(target=_stream, args=(gw, key, surface, out, started))
        t.start()
        assert started.wait(20), surface
        threads.append(t)
    fake.push(Reply(first_byte_delay=6))  # an answer that does not come within the grace either

    def waiting() -> None:
        r = httpx.post(gw.url + "/v1/messages", timeout=30, headers={"x-api-key": key}, json={
            "model": "claude-sonnet-4.5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
        out["waiting"] = r

    threads.append(threading.Thread(target=waiting))
    threads[-1].start()
    deadline = time.monotonic() + 20
    while len(fake.requests) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gw.proc is not None
    t0 = time.monotonic()
    gw.proc.terminate()
    rc = gw.proc.wait(20)
    took = time.monotonic() - t0
    for t in threads:
        t.join(10)
    assert rc in (0, -15) and took < 8, (rc, took)  # uvicorn re-raises the signal after a clean shutdown
    for surface in SURFACES:
        assert surface + ":cut" not in out, out[surface + ":cut"]
    anthropic = _events(out["anthropic"])  # type: ignore[arg-type]
    assert anthropic[-1][0] == "error" and b'"overloaded_error"' in anthropic[-1][1], anthropic[-2:]
    chat = [d for _, d in _events(out["chat"])]  # type: ignore[arg-type]
    assert chat[-1] == b"[DONE]" and b'"error"' in chat[-2], chat[-2:]
    responses = _events(out["responses"])  # type: ignore[arg-type]
    assert responses[-1][0] == "response.failed", responses[-2:]
    waited = out["waiting"]
    assert isinstance(waited, httpx.Response) and waited.status_code == 529, waited
    assert waited.json()["error"]["type"] == "overloaded_error" and waited.headers["x-should-retry"] == "true"
    out["waiting:id"] = waited.headers["x-request-id"]
    for surface in [*SURFACES, "waiting"]:
        row = gw.ledger(1, request_id=out[surface + ":id"])[0]
        assert row["error_type"] == "overloaded_error", (surface, row)
        assert row["input_tokens"] == (0 if surface == "waiting" else 12), (surface, row)  # usage seen is billed
