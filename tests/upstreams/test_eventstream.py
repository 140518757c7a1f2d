"""The AWS event-stream decoder: the spec's test vector, botocore's reading, CRC failures, any split point."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from orgate.upstreams.eventstream import EventStreamDecoder, EventStreamError, Message, Timestamp, encode_message

# §E.4 test vector: a `chunk` event carrying {"type":"message_stop"}.
VECTOR = bytes.fromhex(
    "000000870000004b87ea2bf30b3a6576656e742d747970650700056368756e6b"
    "0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f"
    "6e0d3a6d6573736167652d747970650700056576656e747b226279746573223a"
    "2265794a306558426c496a6f696257567a6332466e5a56397a64473977496e30"
    "3d227dba48ab22"
)
CHUNK_HEADERS = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}


def chunk(event: dict) -> bytes:
    payload = json.dumps({"bytes": base64.b64encode(json.dumps(event).encode()).decode()}).encode()
    return encode_message(CHUNK_HEADERS, payload)


def test_spec_vector_decodes() -> None:
    (msg,) = EventStreamDecoder().feed(VECTOR)
    assert msg.headers == CHUNK_HEADERS
    assert msg.message_type == "event" and msg.event_type == "chunk"
    assert json.loads(base64.b64decode(json.loads(msg.payload)["bytes"])) == {"type": "message_stop"}


def test_encoder_reproduces_vector() -> None:
    assert encode_message(CHUNK_HEADERS, b'{"bytes":"eyJ0eXBlIjoibWVzc2FnZV9zdG9wIn0="}') == VECTOR


def test_botocore_reads_our_frames() -> None:
    frames = chunk({"type": "ping"}) + encode_message(
        {":exception-type": "throttlingException", ":content-type": "application/json", ":message-type": "exception"},
        b'{"message":"Too many requests"}',
    )
    buf = EventStreamBuffer()
    buf.add_data(frames)
    got = [m.to_response_dict() for m in buf]
    assert got[0]["status_code"] == 200 and got[0]["headers"] == CHUNK_HEADERS
    assert got[1]["status_code"] == 400 and got[1]["headers"][":exception-type"] == "throttlingException"


def test_all_header_types_round_trip() -> None:
    u = uuid.uuid4()
    headers = {"t": True, "f": False, "i32": -7, "i64": 2**40, "b": b"\x00\xff", "s": "héllo", "ts": Timestamp(1700000000123), "u": u}
    (msg,) = EventStreamDecoder().feed(encode_message(headers, b"payload"))
    assert msg == Message(headers, b"payload")
    assert isinstance(msg.headers["ts"], Timestamp)
    # botocore agrees on every type
    buf = EventStreamBuffer()
    buf.add_data(encode_message(headers, b"payload"))
    (bm,) = list(buf)
    assert bm.headers["i64"] == 2**40 and bm.headers["s"] == "héllo" and bm.headers["b"] == b"\x00\xff"


def test_message_crc_mismatch_raises() -> None:
    bad = bytearray(VECTOR)
    bad[60] ^= 0x20  # inside the headers
    with pytest.raises(EventStreamError, match="message CRC"):
        EventStreamDecoder().feed(bytes(bad))


def test_prelude_crc_mismatch_raises() -> None:
    bad = bytearray(VECTOR)
    bad[3] ^= 0x01  # total_length
    with pytest.raises(EventStreamError, match="prelude CRC"):
        EventStreamDecoder().feed(bytes(bad))


def test_truncated_stream_fails_on_finish() -> None:
    d = EventStreamDecoder()
    assert d.feed(VECTOR[:-5]) == []
    with pytest.raises(EventStreamError, match="ended inside"):
        d.finish()


def test_clean_finish() -> None:
    d = EventStreamDecoder()
    assert len(d.feed(VECTOR + VECTOR)) == 2
    assert d.finish() == []


def test_impossible_length_rejected() -> None:
    import struct
    import zlib

    prelude = struct.pack(">II", 10, 0)  # shorter than prelude + CRC
    with pytest.raises(EventStreamError, match="impossible"):
        EventStreamDecoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude)) + b"\x00" * 8)


EVENTS = [
    {"type": "message_start", "message": {"id": "msg_1", "content": [], "usage": {"input_tokens": 3}}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "héllo ✓"}},
    {"type": "message_stop"},
]
STREAM = b"".join(chunk(e) for e in EVENTS) + VECTOR


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_gives_same_messages(cuts: list[int]) -> None:
    expected = EventStreamDecoder().feed(STREAM)
    d = EventStreamDecoder()
    got: list[Message] = []
    bounds = [0, *sorted(cuts), len(STREAM)]
    for a, b in zip(bounds, bounds[1:], strict=False):
        got += d.feed(STREAM[a:b])
    got += d.finish()
    assert got == expected and len(got) == 4


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(st.text(min_size=1, max_size=20).filter(lambda s: len(s.encode()) < 256), st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.binary(max_size=50), st.text(max_size=50)), max_size=6),
    st.binary(max_size=300),
)
def test_encode_decode_round_trip(headers: dict, payload: bytes) -> None:
    (msg,) = EventStreamDecoder().feed(encode_message(headers, payload))
    assert msg.headers == headers and msg.payload == payload


def test_error_carries_messages_decoded_before_it() -> None:
    bad = bytearray(VECTOR)
    bad[-6] ^= 0x01
    with pytest.raises(EventStreamError) as info:
        EventStreamDecoder().feed(VECTOR + bytes(bad))
    assert len(info.value.messages) == 1 and info.value.messages[0].event_type == "chunk"
