"""Gateway / Anthropic error kinds rendered as OpenAI error bodies.

Types follow what api.openai.com sends (spec D.11) where it differs from the Anthropic kind: a bad key is
`invalid_request_error` + code `invalid_api_key`, an empty balance is `insufficient_quota`, 5xx are
`server_error` (overloaded: code `overloaded`). The OpenAI SDK classifies by HTTP status, so the type
is informational. Unknown kinds render as `api_error`.
"""

from __future__ import annotations

from typing import Any

import orjson

OPENAI_TYPES: dict[str, str] = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "invalid_request_error",
    "billing_error": "insufficient_quota",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "conflict_error": "conflict_error",
    "request_too_large": "invalid_request_error",
    "rate_limit_error": "rate_limit_error",
    "timeout_error": "timeout_error",
    "api_error": "server_error",
    "overloaded_error": "server_error",
}

DEFAULT_CODES: dict[str, str] = {
    "authentication_error": "invalid_api_key",
    "billing_error": "insufficient_quota",
    "request_too_large": "request_too_large",
    "rate_limit_error": "rate_limit_exceeded",
    "overloaded_error": "overloaded",
    "timeout_error": "timeout",
}


def error_object(kind: str, message: str, *, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """The `{"message","type","param","code"}` object (the value of the body's "error" key)."""
    if code is None:
        code = DEFAULT_CODES.get(kind)
        if kind == "invalid_request_error" and message.lower().startswith("prompt is too long"):
            code = "context_length_exceeded"
    return {"message": message, "type": OPENAI_TYPES.get(kind, "api_error"), "param": param, "code": code}


def error_body(kind: str, message: str, *, param: str | None = None, code: str | None = None) -> bytes:
    return orjson.dumps({"error": error_object(kind, message, param=param, code=code)})
