"""The top level of an Anthropic Messages request, decoded without materialising its content.

The fast path needs only a handful of top-level fields (model, max_tokens, stream, metadata, the router's
fallback fields) and the shape of `messages`; message content (most of a 150 KB Claude Code body) stays as
undecoded bytes. The client's bytes are what goes upstream, so nothing is lost; a full parse happens only
when the body must change (gateway-only fields removed, max_tokens lowered) or an adapter rewrites it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from orgate.core.json_keys import DUPLICATE_KEYS, has_duplicate_keys
from orgate.errors import InvalidRequest

UNSET: Any = msgspec.UNSET
MAX_TOKENS = 2**31 - 1  # no model comes near; past it a reservation would be priced on a meaningless number


class _Message(msgspec.Struct):
    role: Any = None
    content: msgspec.Raw = msgspec.Raw(b"")


class TopLevel(msgspec.Struct):
    model: Any = None
    max_tokens: Any = UNSET
    messages: list[_Message] | None = None
    stream: Any = UNSET
    metadata: Any = None
    fallbacks: Any = UNSET  # the router's per-request fallbacks: for the gateway, never for the provider
    orq: Any = UNSET

    @property
    def has_gateway_fields(self) -> bool:
        return self.fallbacks is not UNSET or self.orq is not UNSET


_DECODER = msgspec.json.Decoder(TopLevel)


def decode_top(raw: bytes) -> TopLevel:
    if not raw:
        raise InvalidRequest("Request body is empty; expected a JSON object.")
    try:
        top = _DECODER.decode(raw)
    except msgspec.ValidationError as e:
        raise InvalidRequest(f"Invalid request: {e}") from None
    except msgspec.DecodeError as e:
        raise InvalidRequest(f"Request body is not valid JSON: {e}") from None
    if has_duplicate_keys(raw):
        raise InvalidRequest(DUPLICATE_KEYS)
    validate(top)
    return top


def validate(top: TopLevel) -> None:
    if not isinstance(top.messages, list):
        raise InvalidRequest("messages: field required (a list of messages)", param="messages")
    for i, m in enumerate(top.messages):
        if not isinstance(m, _Message) or not isinstance(m.role, str):
            raise InvalidRequest(f"messages.{i}: each message needs a 'role' and 'content'", param=f"messages.{i}")
        if not m.content:
            raise InvalidRequest(f"messages.{i}.content: field required", param=f"messages.{i}.content")
    mt = top.max_tokens
    if mt is UNSET or mt is None:
        raise InvalidRequest("max_tokens: field required", param="max_tokens")
    if not isinstance(mt, int) or isinstance(mt, bool) or not 0 <= mt <= MAX_TOKENS:
        raise InvalidRequest(f"max_tokens: must be an integer from 0 to {MAX_TOKENS}", param="max_tokens")
    if top.stream is not UNSET and not isinstance(top.stream, bool):
        raise InvalidRequest("stream: must be a boolean", param="stream")
