"""Server-sent events: an incremental frame decoder, the Anthropic encoder, and the usage tee.

The decoder is I/O-free: `feed(bytes)` returns the complete frames seen so far, `finish()` the rest.
Splitting the input anywhere yields the same frames (a property test checks it).
"""

from __future__ import annotations

from typing import Any

import orjson

from orgate.governance.usage import Usage

Frame = tuple[str, bytes]  # (event name, data payload)


class SSEDecoder:
    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[Frame]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            # CRLF framing; a trailing lone \r waits in the buffer for its \n.
            buf = buf.replace(b"\r\n", b"\n")
        frames: list[Frame] = []
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            frame = _parse_frame(buf[start:end])
            if frame is not None:
                frames.append(frame)
            start = end + 2
        self._buf = buf[start:]
        return frames

    def finish(self) -> list[Frame]:
        rest, self._buf = self._buf, b""
        frame = _parse_frame(rest.rstrip(b"\r\n")) if rest.strip() else None
        return [frame] if frame is not None else []


def _parse_frame(block: bytes) -> Frame | None:
    event = ""
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            v = line[5:]
            data.append(v[1:] if v.startswith(b" ") else v)
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode("utf-8", "replace")
        # comments (":...") and id/retry fields carry nothing the gateway needs
    if not data and not event:
        return None
    return event, b"\n".join(data)


def encode_event(event: str, data: dict[str, Any] | bytes) -> bytes:
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


# Frames that carry nothing accounting needs (usage lives in message_start and message_delta).
_UNACCOUNTED = (b"event: content_block", b"event: ping")


class UsageTee:
    """Reads only what accounting needs from an Anthropic event stream passing through unchanged.

    Only `message_start`, `message_delta` and `error` frames are JSON-parsed; deltas are skipped on
    their event name, so relaying costs one `find` per frame.
    """

    __slots__ = ("_decoder", "_buf", "usage", "message_id", "stop_reason", "stopped", "error", "model", "frames")

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self._buf = b""
        self.usage = Usage()
        self.message_id: str | None = None
        self.model: str | None = None
        self.stop_reason: str | None = None
        self.stopped = False
        self.error: dict[str, Any] | None = None
        self.frames = 0

    def feed(self, chunk: bytes) -> None:
        """Relay path: frame boundaries are found, but content and ping frames (nearly all of a stream) are
        only counted, never split into lines or parsed."""
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            if buf.startswith(_UNACCOUNTED, start):
                self.frames += 1
            else:
                frame = _parse_frame(buf[start:end])
                if frame is not None:
                    self.observe(*frame)
            start = end + 2
        self._buf = buf[start:]

    def finish(self) -> None:
        rest, self._buf = self._buf, b""
        for event, data in self._decoder.feed(rest) + self._decoder.finish():
            self.observe(event, data)

    def observe(self, event: str, data: bytes) -> None:
        self.frames += 1
        if event == "message_delta":
            obj = _loads(data)
            self.usage.merge_anthropic(obj.get("usage"))
            delta = obj.get("delta") or {}
            self.stop_reason = delta.get("stop_reason") or self.stop_reason
        elif event == "message_start":
            msg = _loads(data).get("message") or {}
            self.message_id = msg.get("id")
            self.model = msg.get("model")
            self.usage.merge_anthropic(msg.get("usage"))
        elif event == "message_stop":
            self.stopped = True
        elif event == "error":
            self.error = _loads(data).get("error") or {"type": "api_error", "message": "upstream error"}


def _loads(data: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return obj if isinstance(obj, dict) else {}
