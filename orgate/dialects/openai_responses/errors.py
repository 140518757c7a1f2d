"""OpenAI-shaped errors for the Responses surface.

`error_body` renders `{"error":{"message","type","param","code"}}` for an HTTP error answer;
`openai_error` maps a gateway/Anthropic error kind (see orgate/errors.py) to the OpenAI `type` and the
`code` Codex acts on (codex-rs `sse/responses.rs`): `context_length_exceeded` (Anthropic's
"prompt is too long" 400s) triggers its context-window handling, `rate_limit_exceeded` is retried
(after the delay in a "try again in Ns" message, if any), everything else is a plain retryable error.
"""

from __future__ import annotations

import orjson

# kind -> (OpenAI error type, default code); follows spec D.11.
_KINDS: dict[str, tuple[str, str | None]] = {
    "invalid_request_error": ("invalid_request_error", None),
    "authentication_error": ("invalid_request_error", "invalid_api_key"),
    "permission_error": ("permission_error", None),
    "not_found_error": ("invalid_request_error", None),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "rate_limit_error": ("requests", "rate_limit_exceeded"),
    "billing_error": ("insufficient_quota", "insufficient_quota"),
    "timeout_error": ("server_error", "timeout"),
    "overloaded_error": ("server_error", "overloaded"),
    "api_error": ("server_error", "server_error"),
    "conflict_error": ("invalid_request_error", None),
}


def is_context_overflow(message: str) -> bool:
    low = message.lower()
    return low.startswith("prompt is too long") or "context window" in low or "context_length_exceeded" in low


def openai_error(kind: str, message: str) -> tuple[str, str | None]:
    """(type, code) for a gateway error kind and message."""
    if kind in ("invalid_request_error", "request_too_large") and is_context_overflow(message):
        return "invalid_request_error", "context_length_exceeded"
    return _KINDS.get(kind, ("server_error", "server_error"))


def error_body(kind: str, message: str, *, param: str | None = None, code: str | None = None) -> bytes:
    etype, default_code = openai_error(kind, message)
    return orjson.dumps(
        {
            "error": {
                "message": message,
                "type": etype,
                "param": param,
                "code": code if code is not None else default_code,
            }
        }
    )
