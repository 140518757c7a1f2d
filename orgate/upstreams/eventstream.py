"""AWS event-stream framing (application/vnd.amazon.eventstream), as Bedrock streams use it.

    [total_length u32][headers_length u32][prelude_crc u32][headers][payload][message_crc u32]

All integers big-endian; prelude_crc is CRC-32 of the first 8 bytes, message_crc is CRC-32 of everything
before it. The decoder is I/O free: `feed(bytes)` returns the complete messages seen so far, `finish()`
checks nothing is left over. Any split of the input gives the same messages. A CRC mismatch, an impossible
length or a malformed header raises `EventStreamError` (carrying the good messages decoded before it): the
stream cannot be trusted after that.
`encode_message` builds frames for tests and fake servers.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

PRELUDE_LEN = 12
MIN_MESSAGE_LEN = 16  # prelude + message CRC
MAX_HEADERS_LEN = 128 * 1024
MAX_PAYLOAD_LEN = 16 * 1024 * 1024

_PRELUDE = struct.Struct(">III")
_U32 = struct.Struct(">I")


class EventStreamError(ValueError):
    """The byte stream is not valid event-stream framing.

    `messages` holds the good messages that `feed` decoded before the bad one, so a caller can relay them.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.messages: list[Message] = []


@dataclass(slots=True)
class Message:
    headers: dict[str, Any] = field(default_factory=dict)
    payload: bytes = b""

    @property
    def message_type(self) -> str:
        return str(self.headers.get(":message-type", "event"))

    @property
    def event_type(self) -> str | None:
        return self.headers.get(":event-type")

    @property
    def exception_type(self) -> str | None:
        return self.headers.get(":exception-type")


class Timestamp(int):
    """A header value of type 8 (milliseconds since the epoch), kept distinct from plain integers."""


def _crc(data: bytes | memoryview, seed: int = 0) -> int:
    return zlib.crc32(data, seed) & 0xFFFFFFFF


class EventStreamDecoder:
    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        out: list[Message] = []
        start = 0
        buf = self._buf
        try:
            while len(buf) - start >= PRELUDE_LEN:
                total, headers_len, prelude_crc = _PRELUDE.unpack_from(buf, start)
                if _crc(buf[start : start + 8]) != prelude_crc:
                    raise EventStreamError("event-stream prelude CRC mismatch")
                if headers_len > MAX_HEADERS_LEN:
                    raise EventStreamError(f"event-stream headers too long ({headers_len} bytes)")
                if total < MIN_MESSAGE_LEN + headers_len or total - MIN_MESSAGE_LEN - headers_len > MAX_PAYLOAD_LEN:
                    raise EventStreamError(f"event-stream message length {total} is impossible")
                if len(buf) - start < total:
                    break
                out.append(_decode_message(memoryview(bytes(buf[start : start + total])), headers_len))
                start += total
        except EventStreamError as e:
            e.messages = out
            raise
        finally:
            if start:
                del self._buf[:start]
        return out

    def finish(self) -> list[Message]:
        """The stream ended: anything still buffered is a truncated message."""
        if self._buf:
            n = len(self._buf)
            self._buf.clear()
            raise EventStreamError(f"event-stream ended inside a message ({n} bytes left over)")
        return []


def _decode_message(frame: memoryview, headers_len: int) -> Message:
    end = len(frame) - 4
    (message_crc,) = _U32.unpack_from(frame, end)
    if _crc(frame[:end]) != message_crc:
        raise EventStreamError("event-stream message CRC mismatch")
    headers = _decode_headers(frame[PRELUDE_LEN : PRELUDE_LEN + headers_len])
    return Message(headers, bytes(frame[PRELUDE_LEN + headers_len : end]))


def _decode_headers(data: memoryview) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    i, n = 0, len(data)
    try:
        while i < n:
            name_len = data[i]
            if name_len == 0 or i + 1 + name_len >= n:
                raise EventStreamError("malformed event-stream header name")
            name = bytes(data[i + 1 : i + 1 + name_len]).decode("utf-8")
            i += 1 + name_len
            vtype = data[i]
            i += 1
            value: Any
            if vtype == 0:
                value = True
            elif vtype == 1:
                value = False
            elif vtype in (2, 3, 4, 5, 8):
                fmt = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}[vtype]
                size = struct.calcsize(fmt)
                if i + size > n:
                    raise EventStreamError("truncated event-stream header value")
                (value,) = struct.unpack_from(fmt, data, i)
                if vtype == 8:
                    value = Timestamp(value)
                i += size
            elif vtype in (6, 7):
                if i + 2 > n:
                    raise EventStreamError("truncated event-stream header value")
                (length,) = struct.unpack_from(">H", data, i)
                i += 2
                if i + length > n:
                    raise EventStreamError("truncated event-stream header value")
                raw = bytes(data[i : i + length])
                value = raw.decode("utf-8") if vtype == 7 else raw
                i += length
            elif vtype == 9:
                if i + 16 > n:
                    raise EventStreamError("truncated event-stream header value")
                value = uuid.UUID(bytes=bytes(data[i : i + 16]))
                i += 16
            else:
                raise EventStreamError(f"unknown event-stream header value type {vtype}")
            headers[name] = value
    except UnicodeDecodeError:
        raise EventStreamError("event-stream header is not UTF-8") from None
    return headers


def _encode_header(name: str, value: Any) -> bytes:
    raw_name = name.encode("utf-8")
    out = bytes([len(raw_name)]) + raw_name
    if value is True:
        return out + b"\x00"
    if value is False:
        return out + b"\x01"
    if isinstance(value, Timestamp):
        return out + b"\x08" + struct.pack(">q", value)
    if isinstance(value, int):
        return out + b"\x04" + struct.pack(">i", value) if -(2**31) <= value < 2**31 else out + b"\x05" + struct.pack(">q", value)
    if isinstance(value, uuid.UUID):
        return out + b"\x09" + value.bytes
    if isinstance(value, bytes | bytearray):
        return out + b"\x06" + struct.pack(">H", len(value)) + bytes(value)
    raw = str(value).encode("utf-8")
    return out + b"\x07" + struct.pack(">H", len(raw)) + raw


def encode_message(headers: dict[str, Any], payload: bytes) -> bytes:
    """One framed message; strings are type 7, bytes type 6, bools 0/1, ints int32/int64."""
    hdr = b"".join(_encode_header(k, v) for k, v in headers.items())
    total = PRELUDE_LEN + len(hdr) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hdr))
    prelude += _U32.pack(_crc(prelude))
    body = prelude + hdr + payload
    return body + _U32.pack(_crc(body))
