"""Errors rendered in the caller's dialect, with the headers clients act on.

Upstream error mapping (the documented table; README "Errors"; adapters raise UpstreamError with the
provider's type and message, upstreams/base.py error_answer, and errors.credentials_rejected maps 401/403):
    upstream 400/404/413/422  -> relayed: same status, the provider's error type and message
    upstream 401/403          -> 502 api_error "the provider rejected the gateway's credentials" (the
                                 client's key is fine; the provider's message is not relayed because it
                                 can quote the gateway's own credential), x-should-retry: false
    upstream 429              -> 429 rate_limit_error, retry-after relayed
    upstream 500/502/503/504  -> relayed status (api_error / overloaded_error / timeout_error)
    upstream 529              -> 529 overloaded_error
    connection refused/reset  -> 502 api_error;  timeout -> 504 timeout_error
`x-should-retry: false` goes on every error a retry cannot fix (400, 401, 403, 404, 413, budget 429), so
SDKs and Claude Code stop at once; retryable errors carry `x-should-retry: true` and `retry-after` when known.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from orgate.dialects.openai_chat.errors import error_body
from orgate.errors import BudgetExhausted, GatewayError
from orgate.upstreams.base import relayed


def error_headers(err: GatewayError, request_id: str) -> dict[str, str]:
    h = {"request-id": err.headers.get("request-id", request_id), "x-request-id": request_id}
    for k, v in err.headers.items():
        if k.startswith("anthropic-ratelimit-"):
            h[k] = v
    h["x-should-retry"] = "true" if err.retryable else "false"
    if err.retry_after is not None:
        h["retry-after"] = str(max(1, math.ceil(err.retry_after)))
    return h


def anthropic_error(err: GatewayError, request_id: str) -> bytes:
    error: dict[str, Any] = {"type": err.kind, "message": err.message}
    if isinstance(err, BudgetExhausted):
        # Anthropic's own code for an exhausted spend cap: SDKs raise EnforcedSpendLimitReachedError for it.
        error["details"] = {"error_code": "enforced_spend_limit_reached"}
    return orjson.dumps({"type": "error", "error": error, "request_id": request_id})


def openai_error(err: GatewayError, request_id: str) -> bytes:
    if isinstance(err, BudgetExhausted):
        # OpenAI's quota error: its SDKs and Codex treat insufficient_quota as final, not as a rate limit.
        return error_body("billing_error", err.message, code="insufficient_quota")
    return error_body(err.kind, err.message, param=err.param, code=err.code)


def answer_headers(request_id: str, opened: Any) -> dict[str, str]:
    """Headers for relaying a Claude upstream's answer (the router only returns successes)."""
    resp = opened.response
    picked = getattr(resp, "relay", None)  # the lean client's response picked them while parsing
    headers = dict(picked) if picked is not None else relayed(resp.headers)
    headers.setdefault("request-id", request_id)  # the provider's id when it gave one: support can trace it
    headers["x-request-id"] = request_id
    headers["x-orgate-provider"] = opened.target.provider
    return headers
