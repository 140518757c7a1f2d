"""Anthropic event streams: the encoder, the usage tee of the relay, and the first-bytes probe.

Framing is orgate/core/sse.py's (the one SSE framer); this module knows Anthropic's event names only.
"""

from __future__ import annotations

from typing import Any

import orjson

from orgate.core.sse import SSEFramer, parse
from orgate.core.usage import Usage
from orgate.dialects.anthropic.usage import merge_usage


def encode_event(event: str, data: dict[str, Any] | bytes) -> bytes:
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


def error_event(kind: str, message: str) -> bytes:
    return encode_event("error", {"type": "error", "error": {"type": kind, "message": message}})


# Frames that carry nothing accounting needs (usage lives in message_start and message_delta).
_UNACCOUNTED = (b"event: content_block", b"event: ping")


class UsageTee:
    """Reads only what accounting needs from an Anthropic event stream passing through unchanged.

    Only `message_start`, `message_delta` and `error` frames are JSON-parsed; content and ping frames
    (nearly all of a stream) are recognised by their first bytes and only counted.
    """

    __slots__ = ("_framer", "usage", "message_id", "stop_reason", "stopped", "error", "model", "frames")

    def __init__(self) -> None:
        self._framer = SSEFramer()
        self.usage = Usage()
        self.message_id: str | None = None
        self.model: str | None = None
        self.stop_reason: str | None = None
        self.stopped = False
        self.error: dict[str, Any] | None = None
        self.frames = 0

    def feed(self, chunk: bytes) -> None:
        for block in self._framer.blocks(chunk):
            self._block(block)

    def finish(self) -> None:
        for block in self._framer.finish_blocks():
            self._block(block)

    def _block(self, block: bytes) -> None:
        if block.startswith(_UNACCOUNTED):
            self.frames += 1
        elif (frame := parse(block)) is not None:
            self.observe(*frame)

    def observe(self, event: str, data: bytes) -> None:
        self.frames += 1
        if event == "message_delta":
            obj = _loads(data)
            merge_usage(self.usage, obj.get("usage"))
            delta = obj.get("delta") or {}
            self.stop_reason = delta.get("stop_reason") or self.stop_reason
        elif event == "message_start":
            msg = _loads(data).get("message") or {}
            self.message_id = msg.get("id")
            self.model = msg.get("model")
            merge_usage(self.usage, msg.get("usage"))
        elif event == "message_stop":
            self.stopped = True
        elif event == "error":
            self.error = _loads(data).get("error") or {"type": "api_error", "message": "upstream error"}


class AnthropicProbe:
    """Decides, from a stream's first bytes, whether content started (True) or an error came first (False)."""

    __slots__ = ("_framer", "error")

    def __init__(self) -> None:
        self._framer = SSEFramer()
        self.error: tuple[str, str] | None = None  # (kind, message) of an error event before any content

    def feed(self, chunk: bytes) -> bool | None:
        for event, data in self._framer.feed(chunk):
            if event == "content_block_start":
                return True
            if event == "error":
                err = _loads(data).get("error")
                err = err if isinstance(err, dict) else {}
                self.error = (str(err.get("type") or "overloaded_error"), str(err.get("message") or "upstream error event"))
                return False
        return None


def _loads(data: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return obj if isinstance(obj, dict) else {}
