"""The one SSE framer (orgate/core/sse.py): line ends, comments, and any split of the input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from orgate.core.sse import SSEFramer, parse

_text = st.binary(max_size=20).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
_eol = st.sampled_from([b"\n", b"\r\n", b"\r"])


@st.composite
def streams(draw):
    """(wire bytes, the events a conforming reader dispatches), with mixed line ends and comments."""
    wire, expected = b"", []
    for _ in range(draw(st.integers(0, 6))):
        lines, name, data = [], "", []
        if draw(st.booleans()):
            lines.append(b": keep-alive " + draw(_text))
        if draw(st.booleans()):
            name = draw(st.sampled_from(["message_start", "content_block_delta", "error", "x"]))
            lines.append(b"event: " + name.encode())
        for _ in range(draw(st.integers(0 if name else 1, 3))):
            value = draw(_text).lstrip(b" ")
            data.append(value)
            lines.append(b"data:" + draw(st.sampled_from([b"", b" "])) + value)
        if draw(st.booleans()):
            lines.append(b"id: 7")
        body = b"".join(line + draw(_eol) for line in lines)
        # A CR then an LF is one line end (CRLF), so the blank line after a CR-ended line is not a bare LF.
        blank = draw(_eol)
        wire += body + (b"\r\n" if body.endswith(b"\r") and blank == b"\n" else blank)
        expected.append((name, b"\n".join(data)))
    return wire, expected


def _run(chunks: list[bytes]) -> tuple[list, bytes]:
    framer, events, blocks = SSEFramer(), [], []
    for c in chunks:
        got = framer.blocks(c)
        blocks += got
        events += [e for b in got if (e := parse(b)) is not None]
    rest = framer.finish_blocks()
    blocks += rest
    events += [e for b in rest if (e := parse(b)) is not None]
    return events, b"".join(blocks)


@settings(max_examples=200)
@given(streams(), st.lists(st.integers(0, 400), max_size=10))
def test_any_split_gives_the_same_events_and_bytes(stream, cuts):
    wire, expected = stream
    cuts = sorted({c for c in cuts if c <= len(wire)})
    parts = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    events, relayed = _run(parts)
    assert events == expected
    assert relayed == wire  # blocks are the input's own bytes: a relay can forward them unchanged


def test_line_ends_and_fields():
    wire = b": hi\r\nevent: a\r\ndata: 1\r\ndata:2\r\n\r\nevent: b\rdata: x\r\rdata\n\n"
    assert SSEFramer().feed(wire) == [("a", b"1\n2"), ("b", b"x"), ("", b"")]


def test_unterminated_tail_is_dispatched_at_finish():
    f = SSEFramer()
    assert f.feed(b"event: message_stop\ndata: {}") == []
    assert f.finish() == [("message_stop", b"{}")]
    assert f.finish() == []
