"""What every upstream adapter takes and gives back.

A Claude upstream (anthropic, bedrock, vertex) takes an Anthropic Messages request body and answers in the
Anthropic wire format whatever its own framing is: JSON bodies as Anthropic messages, streams as Anthropic
SSE bytes. A non-2xx answer is raised as `UpstreamError(answered=True)` (errors.py) with the provider's
type and message, never returned as error bytes for someone else to parse back. Provider quirks (URL, auth, body edits, AWS event-stream) stay
inside the adapter, so the pipeline and every dialect see one shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from orgate.core.target import Target
from orgate.errors import UpstreamError, kind_for_status

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


def is_relayed(name: str) -> bool:
    """Whether an upstream header (lower-case name) is passed on to the client's answer."""
    return name in RELAYED_HEADERS or name.startswith(RELAYED_PREFIXES)


def relayed(headers: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in headers.items():
        lk = k.lower()
        if is_relayed(lk):
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


def error_answer(status: int, body: bytes, headers: dict[str, str], provider: str | None = None) -> UpstreamError:
    """A provider's non-2xx answer in the Anthropic (`{"type":"error","error":{type,message}}`) or OpenAI
    (`{"error":{message,type,param,code}}`) shape as the typed error: its type and message unchanged."""
    kind, message = kind_for_status(status), f"Upstream error (HTTP {status})."
    detail: dict[str, object] | None = None
    try:
        obj: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        obj = None
    e = obj.get("error") if isinstance(obj, dict) else None
    param = code = None
    if isinstance(e, dict):
        detail = e
        kind = str(e.get("type") or kind)
        message = str(e.get("message") or message)
        param = e.get("param") if isinstance(e.get("param"), str) else None
        code = str(e["code"]) if e.get("code") is not None else None
    return UpstreamError(message, status=status, kind=kind, retry_after=retry_after_seconds(headers),
                         headers=headers, param=param, code=code, provider=provider, detail=detail, answered=True)


async def raise_answer(resp: UpstreamResponse, provider: str | None = None) -> None:
    """Raise the typed error for a non-2xx answer (its body is read: the connection goes back to the pool)."""
    raise error_answer(resp.status, await resp.read(), resp.headers, provider)
