from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from orgate.core.sse import SSEFramer
from orgate.dialects.openai_responses import ReasoningEnvelope

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = b"s" * 32
EVENT_ADAPTER = TypeAdapter(ResponseStreamEvent)


@pytest.fixture
def envelope() -> ReasoningEnvelope:
    return ReasoningEnvelope(SECRET)


def load_json(name: str):
    return json.loads((FIXTURES / name).read_text())


def anthropic_events(name: str) -> list[dict]:
    dec = SSEFramer()
    frames = dec.feed((FIXTURES / name).read_bytes()) + dec.finish()
    return [orjson.loads(data) for _, data in frames]


def parse_sse(raw: bytes) -> list[tuple[str, dict]]:
    dec = SSEFramer()
    return [(name, orjson.loads(data)) for name, data in dec.feed(raw) + dec.finish()]


def validate_event(obj: dict) -> None:
    EVENT_ADAPTER.validate_python(obj)


def validate_response(obj: dict) -> Response:
    return Response.model_validate(obj)
