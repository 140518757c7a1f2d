from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from orgate.dialects.anthropic.sse import UsageTee
from tests.fakes.anthropic_fake import Reply, stream_events

REPLY = Reply(blocks=[{"type": "thinking", "thinking": "hmm " * 10, "signature": "sig=="},
                      {"type": "text", "text": "hello world " * 5}],
              usage={"input_tokens": 30, "output_tokens": 70, "cache_read_input_tokens": 1000,
                     "cache_creation_input_tokens": 300,
                     "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200}})
STREAM = b"".join(b"event: " + n.encode() + b"\ndata: " + orjson.dumps(d) + b"\n\n" for n, d in stream_events(REPLY, "m"))


def _tee(chunks):
    tee = UsageTee()
    for c in chunks:
        tee.feed(c)
    tee.finish()
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
        tee = _tee(chunks)
        assert tee.usage == whole.usage and tee.stopped and tee.frames == whole.frames
