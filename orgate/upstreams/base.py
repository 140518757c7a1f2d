"""What every upstream adapter takes and gives back.

A Claude upstream (anthropic, bedrock, vertex) takes an Anthropic Messages request body and answers in the
Anthropic wire format whatever its own framing is: JSON bodies as Anthropic messages or Anthropic error
objects, streams as Anthropic SSE bytes. Provider quirks (URL, auth, body edits, AWS event-stream) stay
inside the adapter, so the pipeline and every dialect see one shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from orgate.core.target import Target

# Upstream response headers a client may act on; everything else stays at the gateway.
RELAYED_HEADERS = ("request-id", "retry-after", "retry-after-ms", "x-should-retry")
RELAYED_PREFIXES = ("anthropic-ratelimit-",)
# Set on a response that needed a second try inside the adapter (the router notes it in the attempt log).
REPAIRED_HEADER = "x-orgate-repaired"


@dataclass(slots=True)
class UpstreamCall:
    target: Target
    # Anthropic Messages request (the hub shape); `model` is replaced by the adapter. None on the fast path,
    # where only `raw_body` exists until an adapter needs the dict (see json()).
    body: dict[str, Any] | None
    stream: bool
    anthropic_version: str = "2023-06-01"
    anthropic_beta: str | None = None
    # The client's own bytes when `body` was not changed beyond the model id: the adapter may send them
    # with only the model spliced in, so signatures and unknown fields pass byte for byte.
    raw_body: bytes | None = None
    client_model: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        """The request as a dict, parsed from the client's bytes only when an adapter needs it."""
        if self.body is None:
            assert self.raw_body is not None
            self.body = orjson.loads(self.raw_body)
        return self.body


class UpstreamResponse(Protocol):
    status: int
    headers: dict[str, str]  # lower-case names

    async def read(self) -> bytes: ...

    def iter_chunks(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class ClaudeUpstream(Protocol):
    name: str

    async def messages(self, call: UpstreamCall) -> UpstreamResponse: ...

    async def count_tokens(self, call: UpstreamCall) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


class BufferedResponse:
    """An answer held in memory (mapped errors, converted results, a failed answer already read)."""

    __slots__ = ("status", "headers", "_body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self._body = body

    async def read(self) -> bytes:
        return self._body

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        yield self._body

    async def aclose(self) -> None:
        return None


def relayed(headers: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in headers.items():
        lk = k.lower()
        if lk in RELAYED_HEADERS or lk.startswith(RELAYED_PREFIXES):
            out[lk] = v
    return out


def retry_after_seconds(headers: Any) -> float | None:
    """An upstream's retry delay: `retry-after-ms` (what the SDKs honour first), else `retry-after` seconds."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        v = headers.get(name)
        if v:
            try:
                return float(v) / scale
            except ValueError:
                continue
    return None
