from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orgate.dialects.anthropic.sse import MalformedEvent, UsageTee
from tests.fakes.anthropic_fake import Reply, stream_events

REPLY = Reply(blocks=[{"type": "thinking", "thinking": "hmm " * 10, "signature": "sig=="},
                      {"type": "text", "text": "hello world " * 5}],
              usage={"input_tokens": 30, "output_tokens": 70, "cache_read_input_tokens": 1000,
                     "cache_creation_input_tokens": 300,
                     "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200}})
STREAM = b"".join(b"event: " + n.encode() + b"\ndata: " + orjson.dumps(d) + b"\n\n" for n, d in stream_events(REPLY, "m"))


def _tee(chunks, out=None):
    tee = UsageTee()
    sent = [tee.feed(c) for c in chunks]
    sent.append(tee.finish())
    if out is not None:
        out.append(b"".join(sent))
    return tee


def test_whole_stream_usage():
    tee = _tee([STREAM])
    u = tee.usage
    assert (u.input_tokens, u.output_tokens, u.cache_read_tokens) == (30, 70, 1000)
    assert (u.cache_write_5m_tokens, u.cache_write_1h_tokens) == (100, 200)
    assert tee.stopped and tee.stop_reason == "end_turn" and tee.error is None


@settings(max_examples=200)
@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_any_split_gives_the_same_accounting(cuts):
    cuts = sorted(set(cuts))
    parts = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
    crlf = [p.replace(b"\n", b"\r\n") for p in parts]
    whole = _tee([STREAM])
    for chunks in (parts, crlf):
        out: list[bytes] = []
        tee = _tee(chunks, out)
        assert tee.usage == whole.usage and tee.stopped and tee.frames == whole.frames
        assert out[0] == b"".join(chunks)  # relayed byte for byte, whole frames at a time


@pytest.mark.parametrize("frame", [
    b"event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"ind\n\n",
    b"event: content_block_delta\r\ndata: [1]\r\n\r\n",
    b"event: ping\ndata: nope\n\n",
    b'event: message_start\ndata: {"message": {"usage": 7}}\n\n',
    b'event: message_delta\ndata: {"delta": [], "usage": {}}\n\n',
    b"event: error\ndata: null\n\n",
])
def test_malformed_known_event_is_refused_with_what_came_before(frame):
    tee = UsageTee()
    first = STREAM[:STREAM.index(b"event: content_block_start")]
    with pytest.raises(MalformedEvent) as e:
        tee.feed(first + frame + STREAM[len(first):])
    assert e.value.before == first


def test_unknown_events_and_comments_pass_untouched():
    extra = b"event: something_new\ndata: not json\n\n: a comment\n\n"
    out: list[bytes] = []
    tee = _tee([extra + STREAM], out)
    assert out[0] == extra + STREAM and tee.stopped
