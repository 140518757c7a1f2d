"""The usual-framing fast paths (SSEFramer.usual / feed, UsageTee.feed) against the frame-by-frame ways they
stand in for: same bytes out, same accounting, same error with the same bytes before it, on any split of
random and hostile streams."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from orgate.core.sse import SSEFramer, parse
from orgate.dialects.anthropic.sse import MalformedEvent, UsageTee


def frame(event: bytes, data: bytes) -> bytes:
    return b"event: " + event + b"\ndata: " + data + b"\n\n"


GOOD = [
    frame(b"message_start", b'{"type":"message_start","message":{"id":"msg_1","model":"m","usage":'
                            b'{"input_tokens":12,"output_tokens":1,"cache_read_input_tokens":5}}}'),
    frame(b"content_block_start", b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'),
    frame(b"content_block_delta", b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"h\\u00e9"}}'),
    frame(b"content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"text":"é ü"}}'.encode()),
    frame(b"ping", b'{"type": "ping"}'),
    frame(b"content_block_stop", b'{"type":"content_block_stop","index":0}'),
    frame(b"message_delta", b'{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}'),
    frame(b"message_delta", b'{"delta":{},"usage":{"cache_creation_input_tokens":40}}'),
    frame(b"message_stop", b'{"type":"message_stop"}'),
    frame(b"error", b'{"type":"error","error":{"type":"overloaded_error","message":"busy"}}'),
    frame(b"something_new", b"not json at all"),  # unknown: relayed unchecked
    frame(b"something_new", b"[1, 2]"),
    frame(b"content_block_x", b'{"a": 1}'),  # unknown, though it starts like a content event
    frame(b"", b"{}"),  # an empty event name: an unknown event
]
BAD = [
    frame(b"content_block_delta", b'{"type":"content_block_delta","ind'),
    frame(b"content_block_delta", b"[1]"),
    frame(b"ping", b"nope"),
    frame(b"ping", b'{"a":1},{"b":2}'),  # two objects: would pass a joined-array check
    frame(b"content_block_delta", b'{"a":"\xff"}'),  # not UTF-8
    frame(b"content_block_stop", b'{"a":1e400}'),
    frame(b"message_start", b'{"message": {"usage": 7}}'),
    frame(b"message_start", b'{"message": {"id": "x", "usage": []}}'),
    frame(b"message_delta", b'{"delta": [], "usage": {}}'),
    frame(b"message_delta", b'{"delta": {}, "usage": 3}'),
    frame(b"error", b"null"),
    frame(b"error", b'{"error": "text"}'),
    frame(b"message_stop", b'"stop"'),
]
ODD = [  # framing the fast path does not take: each sends the whole buffer the frame-by-frame way
    b": keep-alive\n\n",
    b"event: ping\r\ndata: {}\r\n\r\n",
    b"event: ping\rdata: {}\r\r",
    b"event:ping\ndata:{}\n\n",
    b"event: content_block_delta\ndata: {\"a\":\ndata: 1}\n\n",
    b"data: {}\n\n",
    b"id: 7\nevent: ping\ndata: {}\n\n",
    b"\n",
    b"event: ping\ndata: {}\n\n\n",
    b"event: message_stop\ndata: {}",  # unterminated: dispatched at finish
    b"data: x\n",  # a line that joins the next frame
    b"xx",
]
_names = st.binary(max_size=6).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))
_random_frame = st.builds(frame, st.one_of(st.sampled_from([b"ping", b"message_delta", b"content_block_stop"]), _names),
                          st.one_of(st.sampled_from([b"{}", b'{"usage":{"output_tokens":3}}', b"[]"]),
                                    st.binary(max_size=8).map(lambda b: b.replace(b"\n", b""))))
_frames = st.lists(st.one_of(st.sampled_from(GOOD), st.sampled_from(BAD), st.sampled_from(ODD), _random_frame),
                   max_size=14)


def _split(wire: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted({c for c in cuts if c <= len(wire)})
    return [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]


def _tee(chunks: list[bytes], fast: bool) -> tuple:
    tee, out, err = UsageTee(), [], None
    try:
        for c in chunks:
            out.append(tee.feed(c) if fast else tee._checked(tee._framer.blocks(c)))
        out.append(tee.finish())
    except MalformedEvent as e:
        err = (str(e), e.event)
        out.append(e.before)
    return (b"".join(out), err, tee.usage, tee.frames, tee.stopped, tee.stop_reason, tee.error, tee.message_id,
            tee.model)


@settings(max_examples=400)
@given(_frames, st.lists(st.integers(0, 1200), max_size=6))
def test_tee_fast_path_is_the_frame_by_frame_way(frames, cuts):
    chunks = _split(b"".join(frames), cuts)
    fast, slow = _tee(chunks, True), _tee(chunks, False)
    assert fast == slow
    if fast[1] is None:
        assert fast[0] == b"".join(chunks)  # relayed byte for byte


@settings(max_examples=300)
@given(st.lists(st.one_of(st.sampled_from(GOOD), st.sampled_from(ODD), _random_frame), max_size=12),
       st.lists(st.integers(0, 1200), max_size=6))
def test_framer_feed_fast_path_is_parse_of_blocks(frames, cuts):
    chunks = _split(b"".join(frames), cuts)
    fast, slow = SSEFramer(), SSEFramer()
    got = [e for c in chunks for e in fast.feed(c)] + fast.finish()
    want = [e for c in chunks for b in slow.blocks(c) if (e := parse(b)) is not None]
    want += [e for b in slow.finish_blocks() if (e := parse(b)) is not None]
    assert got == want


def test_frames_that_do_not_start_at_a_frame_start_are_not_taken():
    for prefix in (b"data: 1\n", b"xx", b"event: message_stop\ndata: {}"):
        wire = prefix + GOOD[4] + GOOD[8]
        assert SSEFramer().usual(wire) is None
        assert _tee([wire], True) == _tee([wire], False)


def test_usual_stream_takes_the_fast_path_and_returns_the_input_itself():
    wire = b"".join(GOOD[:3] + GOOD[4:7] + GOOD[8:9])
    framer = SSEFramer()
    done, names, data = framer.usual(wire + b"event: pi")
    assert done == wire and names[0] == b"message_start" and orjson.loads(data[-1]) == {"type": "message_stop"}
    assert framer.buffered
    assert framer.usual(b"ng\ndata: {}\r\n\r\n") is None  # a CR: not taken, nothing taken
    assert framer.blocks(b"ng\ndata: {}\r\n\r\n") == [b"event: ping\ndata: {}\r\n\r\n"]
    tee = UsageTee()
    assert tee.feed(wire) is wire  # no copy: every frame whole and well-formed
    assert (tee.usage.input_tokens, tee.usage.output_tokens, tee.message_id, tee.stopped) == (12, 9, "msg_1", True)


def test_malformed_accounting_frame_after_many_good_ones_sends_exactly_those():
    good = b"".join(GOOD[:6])
    tee = UsageTee()
    try:
        tee.feed(good + BAD[6] + GOOD[8])
    except MalformedEvent as e:
        assert e.before == good and e.event == "message_start"
        assert tee.frames == 7
    else:
        raise AssertionError("not refused")
