"""Every surface runs in the one request flow (Pipeline.serve): a cancelled request, an upstream failure on
every deployment and a mid-stream upstream error leave the same access-log fields and ledger columns, whichever
API the client speaks (messages, count_tokens, chat completions, responses, the OpenAI relay).

Before issue 13 the surfaces drifted: only /v1/messages caught a cancelled request, count_tokens wrote no access
line, and the OpenAI relay left no attempt_log when every deployment failed.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.fakes.openai_fake import Chat
from tests.routing.conftest import Clouds, Spec

MSG = [{"role": "user", "content": "hi"}]
CLAUDE = "claude-clouds"  # bedrock, then vertex (both can fail count_tokens too)
SURFACES = ["messages", "count_tokens", "chat", "responses", "relay"]
STREAMING = ["messages", "chat", "responses", "relay"]
COMPARED = ("status", "error_type", "attempts", "provider", "disconnected")


def request(surface: str, stream: bool) -> tuple[str, dict[str, Any]]:
    if surface == "messages":
        return "/v1/messages", {"model": CLAUDE, "max_tokens": 16, "messages": MSG, "stream": stream}
    if surface == "count_tokens":
        return "/v1/messages/count_tokens", {"model": CLAUDE, "messages": MSG}
    if surface == "chat":
        return "/v1/chat/completions", {"model": CLAUDE, "max_tokens": 16, "messages": MSG, "stream": stream}
    if surface == "responses":
        return "/v1/responses", {"model": CLAUDE, "max_output_tokens": 16, "input": "hi", "stream": stream}
    return "/v1/chat/completions", {"model": "local-llama", "messages": MSG, "stream": stream}


def send(gw, key: str, surface: str, stream: bool = False, timeout: float = 30) -> httpx.Response:
    path, body = request(surface, stream)
    headers = {"x-api-key": key, "authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"}
    return httpx.post(gw.url + path, json=body, headers=headers, timeout=timeout)


def new_key(gw) -> tuple[str, int]:
    name = f"flow-{uuid.uuid4().hex[:10]}"
    key = gw.create_key(name)
    return key, gw.query("SELECT id FROM keys WHERE name = :n", n=name)[0]["id"]


def outcome(gw, key_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request's ledger row and its access line (the key made exactly one request)."""
    (row,) = gw.ledger(key_id=key_id)
    deadline = time.time() + 10
    while True:
        lines = [json.loads(x) for x in gw.logs().splitlines() if x.startswith("{") and row["request_id"] in x]
        lines = [x for x in lines if "api" in x and x.get("request_id") == row["request_id"]]
        if lines or time.time() > deadline:
            break
        time.sleep(0.1)
    assert len(lines) == 1, f"one access line for {row['request_id']}, found {len(lines)}"
    return row, lines[0]


def assert_same(row: dict[str, Any], line: dict[str, Any]) -> None:
    for field in COMPARED:
        logged = line.get(field)
        stored = row[field]
        if field == "disconnected":
            logged, stored = bool(logged), bool(stored)
        assert logged == stored, f"{field}: access line {logged!r}, ledger {stored!r}"


def script(clouds: Clouds, surface: str, relay: Chat, claude: Spec) -> None:
    """The first deployment's next answer: the OpenAI server's for the relay, Bedrock's otherwise."""
    if surface == "relay":
        clouds.openai.script.append(relay)
    else:
        clouds.push("bedrock", claude)


def fail_everywhere(clouds: Clouds, surface: str) -> None:
    # routing max_attempts 3 over two deployments: bedrock, vertex, then bedrock again
    if surface == "relay":
        clouds.openai.script.extend(Chat(status=503, error_type="server_error", error_message="busy")
                                    for _ in range(3))
        return
    clouds.push("bedrock", Spec(kind="overloaded"), Spec(kind="overloaded"))
    clouds.push("vertex", Spec(kind="overloaded"))


@pytest.mark.parametrize("surface", SURFACES)
def test_failure_on_every_deployment(gw, clouds: Clouds, surface: str):
    key, key_id = new_key(gw)
    fail_everywhere(clouds, surface)
    r = send(gw, key, surface)
    row, line = outcome(gw, key_id)
    assert_same(row, line)
    assert r.status_code == row["status"] == (503 if surface == "relay" else 529)
    assert row["attempts"] == 3 and row["provider"] is None and row["cost_micros"] == 0
    assert len(json.loads(row["attempt_log"])) == 3  # every attempt, on every surface (the relay's included)
    assert line["endpoint"] == row["endpoint"] and line["error"]


@pytest.mark.parametrize("surface", SURFACES)
def test_cancelled_request(gw, clouds: Clouds, surface: str):
    key, key_id = new_key(gw)
    script(clouds, surface, Chat(delay=3.0), Spec(kind="slow", delay=3.0))
    with pytest.raises(httpx.TimeoutException):
        send(gw, key, surface, timeout=0.5)  # the client gives up and closes the connection
    row, line = outcome(gw, key_id)
    assert_same(row, line)
    assert row["disconnected"] and row["status"] == 200 and row["error_type"] is None
    assert row["cost_micros"] == 0 and row["output_tokens"] == 0


@pytest.mark.parametrize("surface", STREAMING)
def test_mid_stream_upstream_error(gw, clouds: Clouds, surface: str):
    key, key_id = new_key(gw)
    script(clouds, surface, Chat(drop_after_chunks=3), Spec(kind="midstream"))
    r = send(gw, key, surface, stream=True)
    frames = r.text.strip().split("\n\n")
    assert r.status_code == 200 and any("error" in f for f in frames[-2:])  # an error event in its dialect (Chat: then [DONE])
    row, line = outcome(gw, key_id)
    assert_same(row, line)
    assert row["status"] == 200 and row["error_type"] == "api_error" and row["attempts"] == 1
    assert row["provider"] == ("oai" if surface == "relay" else "bedrock") and not row["disconnected"]
