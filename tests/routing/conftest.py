"""One gateway in front of four fake upstreams (Anthropic, Bedrock, Vertex, an OpenAI-compatible server).

`clouds.push(provider, spec)` scripts the next answer of a provider in provider-neutral terms (`Spec`), so
one test body can run against each Claude provider; `clouds.bodies(provider)` are the request bodies that
provider received. Fakes run on their own threads and loops: the gateway is a real subprocess.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes import anthropic_fake as af
from tests.fakes.bedrock_fake import BedrockFake, Reply, ScriptedServer, message_events
from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.vertex_fake import VertexFake, make_service_account
from tests.gateway import Gateway

AKID, SECRET = "AKIDFAKEEXAMPLE", "fake/secret/key"
SONNET_PRICE = {"input": "3", "output": "15", "cache_write_5m": "3.75", "cache_write_1h": "6", "cache_read": "0.30"}
MODELS = {  # the same Claude model addressed on each provider, as clients name it
    "anthropic": "anthropic/claude-sonnet-4-5",
    "bedrock": "aws/anthropic/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "vertex": "google/anthropic/claude-sonnet-4-5",
}
CLAUDE = list(MODELS)
USAGE = {"input_tokens": 12, "output_tokens": 7}


@dataclass
class Spec:
    """A provider-neutral scripted answer."""

    kind: str = "text"  # text | tool | thinking | invalid | overloaded | throttled | slow | drop | midstream | precontent
    text: str = "Hello from the fake."
    usage: dict[str, Any] = field(default_factory=lambda: dict(USAGE))
    tool: tuple[str, dict[str, Any]] = ("get_weather", {"location": "Paris"})
    thinking: str = "Let me think."
    signature: str = "EqQBCkYIARgCKkD+sig/with+base64=="
    retry_after: str = "1"
    delay: float = 3.0


def _message(spec: Spec) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    stop = "end_turn"
    if spec.kind == "thinking":
        blocks.append({"type": "thinking", "thinking": spec.thinking, "signature": spec.signature})
    if spec.kind == "tool":
        blocks.append({"type": "text", "text": spec.text})
        blocks.append({"type": "tool_use", "id": "toolu_01FakeToolUseId0000000000", "name": spec.tool[0],
                       "input": spec.tool[1]})
        stop = "tool_use"
    else:
        blocks.append({"type": "text", "text": spec.text})
    return {"id": "msg_fake0000000000000000000", "type": "message", "role": "assistant", "model": "claude",
            "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": dict(spec.usage)}


def to_anthropic(spec: Spec) -> af.Reply:
    if spec.kind == "invalid":
        return af.error(400, "invalid_request_error", "messages: scripted invalid request")
    if spec.kind == "overloaded":
        return af.error(529, "overloaded_error", "Overloaded")
    if spec.kind == "throttled":
        return af.error(429, "rate_limit_error", "Rate limited", headers={"retry-after": spec.retry_after})
    if spec.kind == "slow":
        return af.Reply(first_byte_delay=spec.delay)
    if spec.kind == "midstream":
        return af.Reply(blocks=[{"type": "text", "text": spec.text}], mid_stream_error="overloaded_error")
    m = _message(spec)
    return af.Reply(blocks=m["content"], stop_reason=m["stop_reason"], usage=m["usage"])


def _error_event(kind: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": "scripted stream error"}}


def to_bedrock(spec: Spec) -> Reply:
    table = {"invalid": Reply(error="ValidationException", error_message="messages: scripted invalid request"),
             "overloaded": Reply(error="ServiceUnavailableException", error_message="Bedrock is unavailable"),
             "throttled": Reply(error="ThrottlingException", error_message="Too many requests",
                                headers={"Retry-After": spec.retry_after}),
             "slow": Reply(delay=spec.delay), "drop": Reply(drop=True),
             "midstream": Reply(stream_exception="modelStreamErrorException", cut_after=5),
             "precontent": Reply(stream_exception="throttlingException", cut_after=1)}
    return table.get(spec.kind) or Reply(message=_message(spec))


def to_vertex(spec: Spec) -> Reply:
    events = message_events(_message(spec))
    table = {"invalid": Reply(anthropic_error="invalid_request_error", error_message="messages: scripted invalid request"),
             "overloaded": Reply(anthropic_error="overloaded_error", error_message="Overloaded"),
             "throttled": Reply(error="RESOURCE_EXHAUSTED", error_message="Quota exceeded",
                                headers={"Retry-After": spec.retry_after}),
             "slow": Reply(delay=spec.delay), "drop": Reply(drop=True),
             "midstream": Reply(events=events[:5] + [_error_event("overloaded_error")]),
             "precontent": Reply(events=events[:1] + [_error_event("overloaded_error")])}
    return table.get(spec.kind) or Reply(message=_message(spec))


class Threaded:
    """Runs an async ScriptedServer on a thread of its own."""

    def __init__(self, server: ScriptedServer) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(server.start(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


class Clouds:
    def __init__(self, anthropic: af.FakeAnthropic, tmp: Path) -> None:
        self.anthropic = anthropic
        self.bedrock = BedrockFake(keys={AKID: (SECRET, None)})
        self.vertex = VertexFake(project="fake-project")
        self.openai = OpenAIFake().start()
        self._threads = [Threaded(self.bedrock), Threaded(self.vertex)]
        self.sa_path, public = make_service_account(tmp, self.vertex.token_url)
        self.vertex.add_account(json.loads(self.sa_path.read_text())["client_email"], public)

    def stop(self) -> None:
        for t in self._threads:
            t.stop()
        self.openai.stop()

    def reset(self) -> None:
        self.anthropic.reset()
        for f in (self.bedrock, self.vertex):
            f.script.clear()
            f.requests.clear()
            f.default = None
        self.openai.script.clear()
        self.openai.requests.clear()

    def push(self, provider: str, *specs: Spec) -> None:
        for spec in specs:
            if provider == "anthropic":
                self.anthropic.push(to_anthropic(spec))
            elif provider == "bedrock":
                self.bedrock.script.append(to_bedrock(spec))
            else:
                self.vertex.script.append(to_vertex(spec))

    def bodies(self, provider: str) -> list[dict[str, Any]]:
        if provider == "anthropic":
            return [r["body"] for r in self.anthropic.requests if r["path"] == "/v1/messages"]
        fake = self.bedrock if provider == "bedrock" else self.vertex
        return [r.json for r in fake.requests if r.json is not None and r.model != "count-tokens"]

    def count(self, provider: str) -> int:
        return len(self.bodies(provider))

    def providers(self, **overrides: Any) -> dict[str, Any]:
        quick = {"first_byte": 1.0, "idle": 1.0}
        return {
            # mantle_base_url: a Messages-API model's token count stays on the fake, never real AWS
            "bedrock": {"type": "bedrock", "base_url": self.bedrock.url, "mantle_base_url": self.bedrock.url,
                        "region": "us-east-1", "aws_access_key_id": AKID, "aws_secret_access_key": SECRET,
                        "timeouts": quick},
            "vertex": {"type": "vertex", "base_url": self.vertex.api_base, "region": "us-east5",
                       "project_id": "fake-project", "credentials_file": str(self.sa_path),
                       "token_url": self.vertex.token_url, "timeouts": quick},
            "oai": {"type": "openai_compatible", "base_url": self.openai.base_url, "api_key": self.openai.api_key},
            "oai2": {"type": "openai_compatible", "base_url": self.openai.base_url, "api_key": self.openai.api_key},
            **overrides,
        }


def deployment(provider: str, weight: float = 1.0) -> dict[str, Any]:
    model = {"anthropic": "claude-sonnet-4-5-20250929", "bedrock": "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
             "vertex": "claude-sonnet-4-5@20250929"}[provider]
    return {"provider": provider, "model": model, "weight": weight}


def start_gateway(clouds: Clouds, anthropic_url: str, routing: dict[str, Any], models: dict[str, Any]) -> Gateway:
    gw = Gateway(anthropic_url)
    path = Path(gw.data_dir) / "orgate.yaml"
    path.write_text(yaml.safe_dump({"routing": routing, "providers": clouds.providers(), "models": models}))
    gw.env["ORGATE_CONFIG"] = str(path)
    return gw.start()


@pytest.fixture(scope="session")
def clouds_session(fake_session: af.FakeAnthropic, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clouds]:
    c = Clouds(fake_session, tmp_path_factory.mktemp("clouds"))
    yield c
    c.stop()


@pytest.fixture
def clouds(clouds_session: Clouds) -> Clouds:
    clouds_session.reset()
    return clouds_session


@pytest.fixture(scope="session")
def gw(clouds_session: Clouds, fake_session: af.FakeAnthropic) -> Iterator[Gateway]:
    models = {
        "claude-multi": {"deployments": [deployment("bedrock"), deployment("vertex"), deployment("anthropic")],
                         "price": SONNET_PRICE},
        "claude-clouds": {"deployments": [deployment("bedrock"), deployment("vertex")], "price": SONNET_PRICE},
        "claude-weighted": {"deployments": [deployment("bedrock", 3), deployment("vertex", 1)],
                            "routing": "weighted", "price": SONNET_PRICE},
        "local-llama": {"deployments": [{"provider": "oai", "model": "llama3.1:8b"},
                                        {"provider": "oai2", "model": "llama3.1:8b-instruct"}],
                        "price": {"input": "0.5", "output": "1.5", "cache_read": "0.25"},
                        "display_name": "Llama 3.1 8B"},
    }
    routing = {"max_attempts": 3, "backoff_base_seconds": 0.01, "backoff_max_seconds": 2,
               "circuit_failures": 1000, "circuit_cooldown_seconds": 1}
    g = start_gateway(clouds_session, fake_session.url, routing, models)
    yield g
    g.stop()


@pytest.fixture
def key(gw: Gateway) -> str:
    return gw.create_key("routing-tests")
