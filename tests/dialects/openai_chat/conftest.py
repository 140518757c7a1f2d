"""Shared helpers: replay a recorded Anthropic SSE body through SSEFramer and ChatStreamEncoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from orgate.core.sse import SSEFramer
from orgate.dialects.openai_chat.stream import ChatStreamEncoder

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def encode_pieces(
    pieces: list[bytes], *, include_usage: bool = True, model: str = "claude-x"
) -> tuple[bytes, ChatStreamEncoder]:
    enc = ChatStreamEncoder(model=model, created=1767225600, include_usage=include_usage)
    dec = SSEFramer()
    out = b""
    for piece in pieces:
        for _event, data in dec.feed(piece):
            out += enc.feed(orjson.loads(data))
    for _event, data in dec.finish():
        out += enc.feed(orjson.loads(data))
    out += enc.finish()
    return out, enc


def parse_frames(raw: bytes) -> list[Any]:
    """The data payloads of an OpenAI SSE body: dicts, and the string "[DONE]"."""
    assert raw.endswith(b"\n\n")
    frames: list[Any] = []
    for frame in raw.split(b"\n\n")[:-1]:
        assert frame.startswith(b"data: "), frame
        payload = frame[6:]
        frames.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    return frames


@pytest.fixture
def replay():
    def run(name: str, *, include_usage: bool = True) -> tuple[list[Any], ChatStreamEncoder]:
        raw, enc = encode_pieces([load_fixture(name)], include_usage=include_usage)
        return parse_frames(raw), enc

    return run
