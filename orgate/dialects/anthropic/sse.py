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
# Every event name of the Messages stream (api-reference §A.11): their data must be a JSON object.
KNOWN_EVENTS = frozenset({"message_start", "content_block_start", "content_block_delta", "content_block_stop",
                          "message_delta", "message_stop", "ping", "error"})
# The names, as the framer's bytes, of the frames accounting reads (the others are only checked).
_ACCOUNTED = {name.encode(): name for name in ("message_start", "message_delta", "message_stop", "error")}
_READ = frozenset(_ACCOUNTED.values())
_QUIET = frozenset(name.encode() for name in KNOWN_EVENTS if name.encode() not in _ACCOUNTED)
# An event in the usual framing is its name and data plus these many bytes: "event: ", "\ndata: ", "\n\n".
_USUAL_FRAMING = 16


class MalformedEvent(ValueError):
    """An upstream frame that is not what its event name promises (not a JSON object, or a field the
    gateway reads of the wrong type). `before` holds the well-formed frames of the same feed, to forward."""

    def __init__(self, event: str, reason: str, before: bytes = b"") -> None:
        super().__init__(f"malformed '{event}' event from the upstream: {reason}")
        self.event = event
        self.before = before


class UsageTee:
    """Reads what accounting needs from an Anthropic event stream and checks each frame's shape.

    `feed` returns the complete frames seen so far, byte for byte, for the relay to forward; a frame of a
    known event whose data is not a JSON object (or whose message/delta/usage/error is not an object) raises
    MalformedEvent instead of being forwarded, so the relay ends the stream with an `error` event. Only
    `message_start`, `message_delta` and `error` frames are read for accounting; content and ping frames
    (nearly all of a stream) are only checked to be a JSON object and counted.
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

    def feed(self, chunk: bytes) -> bytes:
        if (usual := self._framer.usual(chunk)) is None:
            return self._checked(self._framer.blocks(chunk))
        done, names, data = usual
        if not names:
            return b""
        # Every frame in the usual framing: all the data parsed by one C-level map, checked to be objects
        # by one set of their types. Anything off (not JSON, not an object, or an unknown event's data that
        # need not be either) goes the frame-by-frame way below, which says what is wrong and where; nothing
        # was changed yet, so it starts over from the same state.
        try:
            objs = list(map(orjson.loads, data))
        except orjson.JSONDecodeError:
            objs = None
        if objs is None or list(map(type, objs)).count(dict) != len(objs):
            return self._checked([b"event: " + n + b"\ndata: " + d + b"\n\n" for n, d in zip(names, data, strict=True)])
        if not _QUIET.issuperset(names):  # accounting frames (a few per stream), in order
            for i, name in enumerate(names):
                if name in _QUIET:
                    continue
                try:
                    if (event := _ACCOUNTED.get(name)) is not None:
                        self._account(event, objs[i])
                except MalformedEvent as e:  # as the frame-by-frame way: counted, and the frames before it sent
                    self.frames += i + 1
                    e.before = done[:sum(map(len, names[:i])) + sum(map(len, data[:i])) + _USUAL_FRAMING * i]
                    raise
        self.frames += len(names)
        return done

    def finish(self) -> bytes:
        return self._checked(self._framer.finish_blocks())

    def _checked(self, blocks: list[bytes]) -> bytes:
        loads = orjson.loads
        for i, block in enumerate(blocks):
            # Nearly every frame of a stream is a content or ping frame in the usual framing (one `data:`
            # line): it is only checked to be a JSON object, inline, without a call per frame. Anything else
            # (accounting frames, odd framing, a frame that fails the check) is parsed and observed, which
            # also says what is wrong.
            if block.startswith(_UNACCOUNTED):
                start = block.find(b"\ndata: ")
                end = len(block) - 2
                if start > 0 and block.find(b"\n", start + 7, end) < 0 and block.endswith(b"\n\n"):
                    try:
                        if type(loads(block[start + 7:end])) is dict:
                            self.frames += 1
                            continue
                    except orjson.JSONDecodeError:
                        pass
            try:
                if (frame := parse(block)) is not None:
                    self.observe(*frame)
            except MalformedEvent as e:
                e.before = b"".join(blocks[:i])
                raise
        return b"".join(blocks)

    def observe(self, event: str, data: bytes) -> dict[str, Any] | None:
        """One frame, parsed; raises MalformedEvent when a known event's data is not what it promises.
        Returns the frame's JSON object (None for an event name it does not know), so a translating relay
        need not parse it again."""
        self.frames += 1
        if event not in KNOWN_EVENTS:
            return None  # a newer event type: relayed untouched (Anthropic may add event types)
        obj = _object(event, data)
        if event in _READ:  # content and ping frames (nearly all) need no call more
            self._account(event, obj)
        return obj

    def _account(self, event: str, obj: dict[str, Any]) -> None:
        """What a known event's object tells accounting; raises MalformedEvent for a field of the wrong type."""
        if event == "message_delta":
            delta = _field(obj, "delta", event)
            merge_usage(self.usage, _field(obj, "usage", event))
            stop = delta.get("stop_reason")
            self.stop_reason = stop if isinstance(stop, str) else self.stop_reason
        elif event == "message_start":
            msg = _field(obj, "message", event)
            self.message_id = _text(msg.get("id"))
            self.model = _text(msg.get("model"))
            merge_usage(self.usage, _field(msg, "usage", event))
        elif event == "message_stop":
            self.stopped = True
        elif event == "error":
            self.error = _field(obj, "error", event) or {"type": "api_error", "message": "upstream error"}


def _object(event: str, data: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise MalformedEvent(event, "data is not JSON") from None
    if not isinstance(obj, dict):
        raise MalformedEvent(event, "data is not a JSON object")
    return obj


def _field(obj: dict[str, Any], name: str, event: str) -> dict[str, Any]:
    value = obj.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedEvent(event, f"'{name}' is not an object")
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class AnthropicProbe:
    """Decides, from a stream's first bytes, whether content started (True) or an error came first (False)."""

    __slots__ = ("_framer", "error")

    def __init__(self) -> None:
        self._framer = SSEFramer()
        self.error: tuple[str, str] | None = None  # (kind, message) of an error event before any content

    def feed(self, chunk: bytes) -> bool | None:
        if not self._framer.buffered and b"\r" not in chunk and _content_first(chunk):
            return True  # decided by two searches; the relay's tee frames and checks these bytes anyway
        for block in self._framer.blocks(chunk):
            if block.startswith(b"event: content_block_start\n"):
                return True  # the usual framing, seen without parsing; a stream's first chunk often holds it all
            frame = parse(block)
            if frame is None:
                continue
            event, data = frame
            if event == "content_block_start":
                return True
            if event == "error":
                err = _loads(data).get("error")
                err = err if isinstance(err, dict) else {}
                self.error = (str(err.get("type") or "overloaded_error"), str(err.get("message") or "upstream error event"))
                return False
        return None


def _line_start(chunk: bytes, needle: bytes, end: int) -> int:
    """The first offset before `end` where `needle` starts a line of `chunk`, or -1 (a JSON data line holds
    no raw newline, so an `event:` line found at a line start is an event line)."""
    at = chunk.find(needle, 0, end)
    while at > 0 and chunk[at - 1] != 10:  # "\n"
        at = chunk.find(needle, at + 1, end)
    return at


def _content_first(chunk: bytes) -> bool:
    """A `content_block_start` event line comes before any `error` event line (LF-framed bytes)."""
    content = _line_start(chunk, b"event: content_block_start\n", len(chunk))
    return content >= 0 and _line_start(chunk, b"event: error\n", content) < 0


def _loads(data: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return obj if isinstance(obj, dict) else {}
