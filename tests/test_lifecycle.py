"""Process-level behaviour: disconnects, graceful shutdown, the seed's cURL tests, what the logs contain."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import threading
import time

import httpx
import orjson
import pytest

from tests.fakes.anthropic_fake import UPSTREAM_KEY, FakeAnthropic, Reply
from tests.gateway import Gateway
from tests.paths import SEEDS

SEED = SEEDS / "000_0f9dcb58be500676.txt"
MSG = [{"role": "user", "content": "hi"}]


def test_client_disconnect_closes_upstream_and_bills_what_was_seen(gateway, fake, key):
    fake.push(Reply(blocks=[{"type": "text", "text": "word " * 100}], event_delay=0.05,
                    usage={"input_tokens": 40, "output_tokens": 77}))
    with httpx.stream("POST", gateway.url + "/v1/messages", headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                      json={"model": "claude-sonnet-4.5", "max_tokens": 500, "stream": True, "messages": MSG}) as r:
        it = r.iter_bytes()
        first = next(it)
        assert b"message_start" in first
    # the client is gone: orgate must drop the upstream stream instead of reading it to the end
    deadline = time.time() + 5
    while time.time() < deadline and fake.closed_streams == 0:
        time.sleep(0.05)
    assert fake.closed_streams >= 1
    (row,) = gateway.ledger(1, key_id=gateway.key_id(key), disconnected=1)
    # message_start's usage (input 40, output 1 so far) was billed; message_delta never came
    assert row["input_tokens"] == 40 and row["output_tokens"] < 77
    assert row["cost_micros"] == 40 * 3 + row["output_tokens"] * 15


def test_sigterm_lets_inflight_streams_finish(fake):
    gw = Gateway(fake.url).start()
    k = gw.create_key("graceful")
    fake.default = Reply(blocks=[{"type": "text", "text": "x" * 70}], event_delay=0.1)  # ~1 s of events
    out: dict[str, bytes] = {}

    def stream() -> None:
        r = httpx.post(gw.url + "/v1/messages", timeout=30, headers={"x-api-key": k, "anthropic-version": "2023-06-01"},
                       json={"model": "claude-sonnet-4.5", "max_tokens": 100, "stream": True, "messages": MSG})
        out["body"] = r.content

    t = threading.Thread(target=stream)
    t.start()
    while not fake.requests:
        time.sleep(0.02)
    time.sleep(0.2)
    gw.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(httpx.HTTPError):  # no new connections once shutdown started
        httpx.get(gw.url + "/health", timeout=2)
    t.join(15)
    assert out["body"].rstrip().endswith(b'data: {"type":"message_stop"}')
    # uvicorn re-raises the captured SIGTERM after its graceful shutdown, so the exit status is -SIGTERM
    assert gw.proc.wait(15) in (0, -signal.SIGTERM)
    gw.stop()
    assert "Application shutdown complete" in gw.logs()
    assert gw.ledger(1)[-1]["status"] == 200  # flushed on shutdown


def _seed_curls() -> list[str]:
    text = SEED.read_text()
    block = text[text.index("cURL Test"):text.index("Usage Tracking")]
    cmds = re.findall(r"curl -X POST .*?\}'", block, flags=re.S)
    assert len(cmds) == 2
    return cmds


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl missing")
def test_seed_curl_examples_work_unchanged_but_host_and_key(gateway, fake, key):
    for cmd in _seed_curls():
        cmd = cmd.replace("https://orproject.online", gateway.url).replace("sk-ant-YOUR_KEY", key)
        p = subprocess.run(["bash", "-c", cmd.replace("\\\n", " ")], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        if '"stream": true' in cmd:
            assert "event: message_start" in p.stdout and "event: message_stop" in p.stdout
        else:
            body = orjson.loads(p.stdout)
            assert body["type"] == "message" and body["content"][0]["type"] == "text"
    assert [r["body"]["model"] for r in fake.requests] == ["claude-sonnet-4-5-20250929"] * 2


def test_logs_carry_request_ids_and_never_secrets(gateway, fake, key):
    r = httpx.post(gateway.url + "/v1/messages", headers={"x-api-key": "sk-ant-bogus-secret-value"},
                   json={"model": "claude-sonnet-4.5", "max_tokens": 5, "messages": MSG})
    rid = r.json()["request_id"]
    httpx.post(gateway.url + "/v1/messages", headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
               json={"model": "claude-sonnet-4.5", "max_tokens": 5, "messages": [{"role": "user", "content": "PROMPT-SECRET"}]})
    deadline = time.monotonic() + 10  # the access log is written off the request path: wait for it under load
    while not (rid in gateway.logs() and key[:12] in gateway.logs()) and time.monotonic() < deadline:
        time.sleep(0.1)
    logs = gateway.logs()
    assert rid in logs
    assert key not in logs and "sk-ant-bogus-secret-value" not in logs and UPSTREAM_KEY not in logs
    assert "PROMPT-SECRET" not in logs
    assert key[:12] in logs  # the visible prefix identifies the key


def test_every_route_needs_a_key(gateway):
    for method, path in [("POST", "/v1/messages"), ("POST", "/v1/messages/count_tokens"), ("GET", "/v1/models"),
                         ("GET", "/v1/models/claude-sonnet-4.5"), ("POST", "/v1/chat/completions"),
                         ("POST", "/v1/responses"), ("GET", "/v1/usage")]:
        r = httpx.request(method, gateway.url + path, json={"model": "claude-sonnet-4.5", "messages": MSG,
                                                             "max_tokens": 5, "input": "x"})
        assert r.status_code == 401, (path, r.status_code, r.text)


@pytest.fixture(scope="module")
def fake_local():
    f = FakeAnthropic()
    f.start()
    yield f
    f.stop()


def test_prompt_logging_only_when_the_operator_turns_it_on(fake):
    gw = Gateway(fake.url, env={"ORGATE_SERVER__LOG_PROMPTS": "true"}).start()
    try:
        k = gw.create_key("logged")
        httpx.post(gw.url + "/v1/messages", headers={"x-api-key": k, "anthropic-version": "2023-06-01"},
                   json={"model": "claude-sonnet-4.5", "max_tokens": 5,
                         "messages": [{"role": "user", "content": "PROMPT-VISIBLE"}]})
        time.sleep(0.3)
    finally:
        gw.stop()
    logs = gw.logs()
    assert "PROMPT-VISIBLE" in logs and k not in logs
