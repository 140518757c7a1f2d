"""One error tree for the whole gateway.

    GatewayError(kind, status, retryable)
    ├── InvalidRequest        400 invalid_request_error   (bad JSON, missing/wrong field: names the field)
    ├── AuthenticationFailed  401 authentication_error    (missing/unknown key)
    ├── PermissionDenied      403 permission_error        (disabled/expired key, model not allowed)
    ├── NotFound              404 not_found_error         (unknown model or route)
    ├── RequestTooLarge       413 request_too_large       (body over the configured limit)
    ├── BudgetExhausted       429 rate_limit_error        (no retry: x-should-retry false)
    ├── RateLimited           429 rate_limit_error        (key RPM/TPM/concurrency: retryable, retry-after)
    ├── UpstreamError         any status relayed from a provider, kind from the status table
    └── InternalError         500 api_error               (never carries internals)

Each dialect renders these in its own wire shape (server/render.py); nothing here knows HTTP bodies.
"""

from __future__ import annotations

# Anthropic error type for each HTTP status; the table every surface and upstream mapping shares.
STATUS_KIND: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

# The status a gateway error of each kind is answered with (the inverse of STATUS_KIND, one status a kind):
# an `error` event in a stream carries only a kind, and the router needs its status.
KIND_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

# Cloud front ends (Bedrock, Vertex) answer some conditions with a status Anthropic's API spells otherwise;
# a client (and Claude Code's recovery) expects Anthropic's: unavailable is overloaded (529), a gateway
# timeout is 504, a failed dependency is a plain 500.
CLOUD_STATUS: dict[int, int] = {408: 504, 424: 500, 503: 529}

# Statuses a retry (by the client or by our router) can fix.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def kind_for_status(status: int) -> str:
    if status in STATUS_KIND:
        return STATUS_KIND[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def status_for_kind(kind: str, default: int = 529) -> int:
    return KIND_STATUS.get(kind, default)


def cloud_status(status: int) -> tuple[int, str]:
    """A cloud front end's HTTP status as Anthropic's API would answer: (status, kind)."""
    status = CLOUD_STATUS.get(status, status)
    if status not in STATUS_KIND:
        status = 500 if status >= 500 else 400
    return status, STATUS_KIND[status]


class GatewayError(Exception):
    status: int = 500
    kind: str = "api_error"
    retryable: bool = False
    # Set by the router when every deployment failed, so the ledger row still says what was tried.
    attempts: int = 0
    attempt_log: list[dict[str, object]] | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        kind: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if kind is not None:
            self.kind = kind
        if retryable is not None:
            self.retryable = retryable
        self.retry_after = retry_after
        self.param = param
        self.code = code
        # Upstream headers worth relaying with the error (request-id, rate-limit headers).
        self.headers = headers or {}


class InvalidRequest(GatewayError):
    status, kind = 400, "invalid_request_error"


class AuthenticationFailed(GatewayError):
    status, kind = 401, "authentication_error"


class PermissionDenied(GatewayError):
    status, kind = 403, "permission_error"


class NotFound(GatewayError):
    status, kind = 404, "not_found_error"


class RequestTooLarge(GatewayError):
    status, kind = 413, "request_too_large"


class BudgetExhausted(GatewayError):
    status, kind = 429, "rate_limit_error"
    level = "key"  # whose budget refused: key | user | team


class RateLimited(GatewayError):
    status, kind, retryable = 429, "rate_limit_error", True


class InternalError(GatewayError):
    status, kind = 500, "api_error"


class UpstreamError(GatewayError):
    """An error answered (or caused) by a provider; status and kind come from the mapping table.

    Adapters raise it for every non-2xx answer (`answered=True`), with the provider's own type and message
    (`kind`, `message`: relayed to the client unchanged, Claude Code's recovery matches on the wording),
    `retry_after` and the headers worth relaying; `provider` names the deployment's provider and `detail`
    keeps the provider's error object as parsed. The router and the renderers read these fields directly:
    nothing parses an error body twice.
    """

    def __init__(self, message: str, *, status: int, provider: str | None = None,
                 detail: dict[str, object] | None = None, answered: bool = False, **kw: object) -> None:
        kw.setdefault("kind", kind_for_status(status))
        kw.setdefault("retryable", status in RETRYABLE_STATUSES)
        super().__init__(message, status=status, **kw)  # type: ignore[arg-type]
        self.provider = provider
        self.detail = detail
        self.answered = answered


def credentials_rejected(err: UpstreamError) -> UpstreamError:
    """A provider's 401/403 is about the gateway's own credentials, not the client's key: 502, and the
    provider's message is not relayed (it can quote the gateway's credential)."""
    out = UpstreamError("The model provider rejected the gateway's credentials. Contact your administrator.",
                        status=502, kind="api_error", retryable=False, headers=err.headers, provider=err.provider,
                        detail=err.detail, answered=True)
    out.attempts, out.attempt_log = err.attempts, err.attempt_log
    return out


class UpstreamUnavailable(UpstreamError):
    """Transport failure before any response: refused connection, timeout, reset."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        # A timeout is 504 timeout_error; a refused/reset connection is a retryable 502 api_error.
        super().__init__(message, status=504 if timeout else 502, retryable=True)


class ShuttingDown(UpstreamUnavailable):
    """orgate is stopping and its shutdown grace ran out: a stream (or answer) still being read from a provider
    ends with this, in its dialect (an Anthropic `error` event of type overloaded_error, OpenAI's error chunk),
    so the client's SDK raises a retryable error instead of seeing the connection cut."""

    def __init__(self) -> None:
        UpstreamError.__init__(self, "orgate is shutting down; retry the request.", status=529, retryable=True)


class DependencyUnavailable(GatewayError):
    """The gateway's own database or Redis is down or too slow (store/outage.py): a retry shortly can succeed,
    so 503 with x-should-retry: true and a retry-after, never a permanent-looking 500."""

    status, kind, retryable = 503, "overloaded_error", True

    def __init__(self, message: str, retry_after: float = 2.0) -> None:
        super().__init__(message, retry_after=retry_after)
