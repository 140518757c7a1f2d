"""The one server-sent-events framer: incremental, I/O-free, for every SSE reader in the gateway.

`blocks(chunk)` returns the complete events seen so far as the exact bytes that carried them (each with its
blank line), so a relay can forward or drop whole events without re-serializing; `feed(chunk)` returns them
parsed as (event name, data). `finish()` / `finish_blocks()` give what the stream ended with. Framing
follows the WHATWG rules: lines end with CRLF, LF or CR; a blank line ends an event; lines starting with
":" are comments; `data:` lines join with "\n"; one space after the colon is dropped; `id`/`retry` carry
nothing the gateway needs. Splitting the input anywhere yields the same events (a Hypothesis property in
tests/unit/test_sse.py), and the blocks always concatenate back to the input.

Fast path: upstreams frame with LF (Anthropic, OpenAI), so a buffer without CR is cut with `bytes.find`;
only a buffer holding a CR goes through the regular expression.
"""

from __future__ import annotations

import re

Event = tuple[str, bytes]  # (event name, data payload)

# Two line ends in a row: the end of an event. A CR directly followed by LF is one line end (CRLF), never
# two; a CR at the very end of the buffer is taken as a line end (if its LF follows in the next chunk, that
# LF is an empty line, which dispatches nothing).
_BOUNDARY = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
_LINES = re.compile(rb"\r\n|\r|\n")


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

    @property
    def buffered(self) -> bool:
        """Bytes of an incomplete event are held (the next chunk continues them)."""
        return bool(self._buf)

    def finish_blocks(self) -> list[bytes]:
        rest, self._buf = self._buf, b""
        return [rest] if rest else []

    def feed(self, chunk: bytes) -> list[Event]:
        return [e for b in self.blocks(chunk) if (e := parse(b)) is not None]

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
