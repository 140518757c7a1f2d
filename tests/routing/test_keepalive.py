"""Keep-alive on streams from Bedrock and Vertex fakes that think silently longer than the interval, and a
dead stream that still ends with an error event within the upstream idle timeout."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tests.fakes.bedrock_fake import Reply, message_events, text_message
from tests.gateway import Gateway
from tests.routing.conftest import MODELS, Clouds

INTERVAL, IDLE = 1.0, 4.0
PAUSE = 3.2  # silent thinking, longer than the keep-alive interval, shorter than the idle timeout


@pytest.fixture(scope="module")
def kgw(clouds_session: Clouds, fake_session, tmp_path_factory) -> Gateway:
    providers = clouds_session.providers()
    for name in ("bedrock", "vertex"):
        providers[name] = {**providers[name], "timeouts": {"first_byte": 10.0, "idle": IDLE}}
    path = Path(tmp_path_factory.mktemp("keepalive")) / "orgate.yaml"
    path.write_text(yaml.safe_dump({"routing": {"max_attempts": 1}, "providers": providers}))
    gw = Gateway(fake_session.url, env={"ORGATE_SERVER__KEEPALIVE_SECONDS": str(INTERVAL)})
    gw.env["ORGATE_CONFIG"] = str(path)
    gw.start()
    yield gw
    gw.stop()


def _frames(raw: bytes) -> list[tuple[str, str]]:
    """(event name or ':' for a comment, data) per SSE frame."""
    out = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        if not block.strip():
            continue
        lines = block.decode().split("\n")
        if all(line.startswith(":") for line in lines):
            out.append((":", lines[0]))
            continue
        name = next((line[7:] for line in lines if line.startswith("event: ")), "")
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        out.append((name, data))
    return out


def _push(clouds: Clouds, provider: str, reply: Reply) -> None:
    (clouds.bedrock if provider == "bedrock" else clouds.vertex).script.append(reply)


def _post_stream(gw: Gateway, key: str, path: str, body: dict) -> tuple[bytes, float]:
    started = time.monotonic()
    with httpx.stream("POST", gw.url + path, json=body, timeout=30,
                      headers={"x-api-key": key, "authorization": f"Bearer {key}",
                               "anthropic-version": "2023-06-01"}) as r:
        assert r.status_code == 200, r.read()
        raw = b"".join(r.iter_raw())
    return raw, time.monotonic() - started


@pytest.mark.parametrize("provider", ["bedrock", "vertex"])
def test_silent_thinking_gets_pings_and_completes_on_messages(kgw, clouds, provider):
    key = kgw.create_key(f"ka-{provider}")
    message = text_message("Thought long, answered short.")
    _push(clouds, provider, Reply(message=message, pause_after=2, pause=PAUSE))
    raw, _ = _post_stream(kgw, key, "/v1/messages", {"model": MODELS[provider], "max_tokens": 100, "stream": True,
                                                     "messages": [{"role": "user", "content": "think"}]})
    frames = _frames(raw)
    names = [n for n, _ in frames]
    expected = [e["type"] for e in message_events(message)]
    # The upstream's events arrive in their order; orgate's pings fall between them during the pause.
    assert [n for n in names if n != "ping"] == [e for e in expected if e != "ping"]
    gap = names[names.index("content_block_start") + 1:]
    injected = gap[:next(i for i, n in enumerate(gap) if n != "ping")]
    assert len(injected) >= int(PAUSE / INTERVAL) - 1 >= 2, names
    row = kgw.ledger(1, key_id=_key_id(kgw, f"ka-{provider}"))[-1]
    assert row["status"] == 200 and row["input_tokens"] == 12 and row["output_tokens"] == 7  # accounting intact


@pytest.mark.parametrize("provider", ["bedrock", "vertex"])
def test_silent_thinking_gets_comments_and_completes_on_chat(kgw, clouds, provider):
    key = kgw.create_key(f"ka-chat-{provider}")
    message = text_message("Thought long, answered short.")
    _push(clouds, provider, Reply(message=message, pause_after=2, pause=PAUSE))
    raw, _ = _post_stream(kgw, key, "/v1/chat/completions", {
        "model": MODELS[provider], "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "think"}]})
    frames = _frames(raw)
    assert sum(1 for n, _ in frames if n == ":") >= 2, frames
    assert frames[-1] == ("", "[DONE]")
    # the official SDK reads the same kind of stream to the end, comments and all
    _push(clouds, provider, Reply(message=message, pause_after=2, pause=PAUSE))
    client = openai.OpenAI(base_url=kgw.url + "/v1", api_key=key, max_retries=0)
    chunks = list(client.chat.completions.create(model=MODELS[provider], stream=True,
                                                 messages=[{"role": "user", "content": "think"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Thought long, answered short."


@pytest.mark.parametrize("provider", ["bedrock", "vertex"])
def test_dead_stream_ends_with_error_event_within_idle_timeout(kgw, clouds, provider):
    key = kgw.create_key(f"ka-dead-{provider}")
    _push(clouds, provider, Reply(message=text_message("never finished"), hang_after=2))
    raw, elapsed = _post_stream(kgw, key, "/v1/messages", {"model": MODELS[provider], "max_tokens": 100,
                                                           "stream": True,
                                                           "messages": [{"role": "user", "content": "hi"}]})
    frames = _frames(raw)
    names = [n for n, _ in frames]
    assert names[0] == "message_start" and names[-1] == "error", names
    assert names.count("ping") >= 2  # kept alive while waiting, yet ...
    assert IDLE <= elapsed < IDLE + 4.0, elapsed  # ... the idle timeout still ends it
    assert "timed out" in frames[-1][1]


def _key_id(gw: Gateway, name: str) -> int:
    return gw.query("SELECT id FROM keys WHERE name = :n", n=name)[0]["id"]
