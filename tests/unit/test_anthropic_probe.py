"""The stream probe's verdict (dialects/anthropic/sse.AnthropicProbe) is the framed and parsed verdict, whatever
the frames and however the bytes are cut into chunks; its two-search shortcut changes nothing."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from orgate.core.sse import SSEFramer
from orgate.dialects.anthropic.sse import AnthropicProbe


def reference(chunks: list[bytes]) -> tuple[bool | None, tuple[str, str] | None]:
    """Frame and parse every event, no shortcut."""
    framer = SSEFramer()
    for chunk in chunks:
        for event, data in framer.feed(chunk):
            if event == "content_block_start":
                return True, None
            if event == "error":
                err = json.loads(data).get("error") or {}
                return False, (str(err.get("type") or "overloaded_error"), str(err.get("message") or "upstream error event"))
    return None, None


def frame(name: str, data: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + json.dumps(data).encode() + b"\n\n"


FRAMES = {
    "message_start": frame("message_start", {"type": "message_start", "message": {"id": "m"}}),
    "ping": frame("ping", {"type": "ping"}),
    "content": frame("content_block_start", {"type": "content_block_start", "index": 0}),
    "error": frame("error", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}),
    "tricky": frame("message_start", {"type": "message_start", "note": "event: content_block_start\nevent: error\n"}),
    "comment": b": keep-alive\n\n",
    "inside": b"event: ping\ndata: event: content_block_start\n\n",  # the words, not at a line start
    "crlf": b"event: content_block_start\r\ndata: {}\r\n\r\n",
}


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(sorted(FRAMES)), max_size=6), st.lists(st.integers(0, 400), max_size=3))
def test_the_verdict_is_the_parsed_verdict(names: list[str], cuts: list[int]) -> None:
    raw = b"".join(FRAMES[n] for n in names)
    points = sorted({min(c, len(raw)) for c in cuts})
    chunks = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True) if b > a]
    probe = AnthropicProbe()
    got = None
    for chunk in chunks:
        got = probe.feed(chunk)
        if got is not None:
            break
    want, error = reference(chunks)
    assert got == want
    assert probe.error == error
