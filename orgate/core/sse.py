"""The one server-sent-events framer: incremental, I/O-free, for every SSE reader in the gateway.

`blocks(chunk)` returns the complete events seen so far as the exact bytes that carried them (each with its
blank line), so a relay can forward or drop whole events without re-serializing; `feed(chunk)` returns them
parsed as (event name, data). `finish()` / `finish_blocks()` give what the stream ended with. Framing
follows the WHATWG rules: lines end with CRLF, LF or CR; a blank line ends an event; lines starting with
":" are comments; `data:` lines join with "\n"; one space after the colon is dropped; `id`/`retry` carry
nothing the gateway needs. Splitting the input anywhere yields the same events (a Hypothesis property in
tests/unit/test_sse.py), and the blocks always concatenate back to the input.

Fast path: upstreams frame with LF (Anthropic, OpenAI), so a buffer without CR is cut with `bytes.find`;
only a buffer holding a CR goes through the regular expression. `usual(chunk)` goes further for relays that
check every frame: when the complete events held are all in the usual framing (`event: NAME\ndata: ONE LINE`
then a blank line, LF only), one C-level regex split gives all their names and data at once, and the events'
bytes are returned as one slice of the input, with no per-frame Python work.
"""

from __future__ import annotations

import re

Event = tuple[str, bytes]  # (event name, data payload)

# Two line ends in a row: the end of an event. A CR directly followed by LF is one line end (CRLF), never
# two; a CR at the very end of the buffer is taken as a line end (if its LF follows in the next chunk, that
# LF is an empty line, which dispatches nothing).
_BOUNDARY = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
_LINES = re.compile(rb"\r\n|\r|\n")
# One event in the usual framing. Splitting a buffer on it gives ["", name, data, "", name, data, ..., ""]:
# the buffer is nothing but such events exactly when every third item (what lies between them) is empty.
_USUAL = re.compile(rb"event: ([^\n]*)\ndata: ([^\n]*)\n\n")


class SSEFramer:
    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def blocks(self, chunk: bytes) -> list[bytes]:
        buf = self._buf + chunk if self._buf else chunk
        out: list[bytes] = []
        start = 0
        if b"\r" not in buf:
            while (end := buf.find(b"\n\n", start)) >= 0:
                out.append(buf[start:end + 2])
                start = end + 2
        else:
            while (m := _BOUNDARY.search(buf, start)) is not None:
                out.append(buf[start:m.end()])
                start = m.end()
        self._buf = buf[start:] if start else buf
        return out

    def usual(self, chunk: bytes) -> tuple[bytes, list[bytes], list[bytes]] | None:
        """(the complete events' bytes, their names, their data) when every complete event held, with
        `chunk`, is in the usual framing; the same events `blocks(chunk)` would give, joined, and the same
        bytes held after. None, taking nothing, otherwise: call `blocks(chunk)` then."""
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            return None
        # The events end at the last blank line. When the bytes before it are usual events, the framer's
        # own cuts (each at the first "\n\n" from an event's start) fall at the same places, and what
        # follows holds no "\n\n" (a later one, or one starting at end - 1, would have been found).
        end = buf.rfind(b"\n\n") + 2
        if end < 2:
            self._buf = buf
            return b"", [], []
        done = buf if end == len(buf) else buf[:end]
        parts = _USUAL.split(done)
        if any(parts[0::3]):
            return None
        self._buf = buf[end:]
        return done, parts[1::3], parts[2::3]

    @property
    def buffered(self) -> bool:
        """Bytes of an incomplete event are held (the next chunk continues them)."""
        return bool(self._buf)

    def finish_blocks(self) -> list[bytes]:
        rest, self._buf = self._buf, b""
        return [rest] if rest else []

    def feed(self, chunk: bytes) -> list[Event]:
        if (usual := self.usual(chunk)) is None:
            return [e for b in self.blocks(chunk) if (e := parse(b)) is not None]
        _, names, data = usual
        # The names decoded in one call: joined by LF, which no name holds and no replacement yields.
        return list(zip(b"\n".join(names).decode("utf-8", "replace").split("\n"), data, strict=True)) if names else []

    def finish(self) -> list[Event]:
        return [e for b in self.finish_blocks() if (e := parse(b)) is not None]


def parse(block: bytes) -> Event | None:
    """One event's bytes as (event name, data); None for a block of comments or blank lines only."""
    if block.startswith(b"event: "):
        # The usual framing (`event: NAME\ndata: JSON\n\n`, LF only), sliced without splitting lines.
        nl = block.find(b"\n")
        if block.startswith(b"data: ", nl + 1) and block.find(b"\n", nl + 7) == len(block) - 2 \
                and block.endswith(b"\n\n") and b"\r" not in block:
            return block[7:nl].decode("utf-8", "replace"), block[nl + 7:-2]
    event = ""
    data: list[bytes] = []
    for line in (block.split(b"\n") if b"\r" not in block else _LINES.split(block)):
        if line.startswith(b"data"):
            name, _, value = line.partition(b":")
            if name != b"data":
                continue
            data.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event"):
            name, _, value = line.partition(b":")
            if name == b"event":
                event = (value[1:] if value.startswith(b" ") else value).decode("utf-8", "replace")
        # comments (":..."), id and retry carry nothing the gateway needs
    if not data and not event:
        return None
    return event, b"\n".join(data)
