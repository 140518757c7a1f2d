"""The key is checked before a byte of the body is read, on every route that serves key holders.

Reading first would let anyone without a key make the gateway hold up to `server.max_body_bytes` per
connection (20 clients x 32 MB grew RSS by 383 MB) and learn they are refused only at the end. The check is
the same cached lookup the handler does next (governance keyauth), so a valid key costs one dict lookup more.
A refusal closes the connection when a body is on its way, so the unread body is never drained.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orgate.errors import GatewayError, InternalError
from orgate.pipeline import Exchange
from orgate.server.asgi import Request, respond
from orgate.server.render import anthropic_error, error_headers, openai_error
from orgate.store.outage import unavailable

if TYPE_CHECKING:
    from orgate.server.app import App

OPENAI_PATHS = ("/v1/chat/completions", "/v2/router/chat/completions", "/v2/chat/completions", "/v1/responses")
KEYED_PATHS = frozenset({"/v1/messages", "/v1/messages/count_tokens", *OPENAI_PATHS})


def error_body(req: Request, err: GatewayError) -> bytes:
    """An error in the dialect of the route asked for (OpenAI's shape on its paths, else Anthropic's)."""
    openai_style = req.path.startswith(("/v1/chat", "/v1/responses", "/v2/"))
    return openai_error(err, req.request_id) if openai_style else anthropic_error(err, req.request_id)


async def key_first(app: App, req: Request) -> bool:
    """True when the request may go on to its handler; otherwise it has been answered."""
    if req.method != "POST" or req.path not in KEYED_PATHS:
        return True
    try:
        req.key = await app.auth.authenticate(req.headers)
        return True
    except GatewayError as e:
        err = e
    except Exception as e:  # noqa: BLE001 - an outage of the key store is a 503, anything else a 500
        err = unavailable(e) or InternalError("Internal server error.")
        if err.status == 500:
            app.log.exception("key check failed", extra={"request_id": req.request_id})
    headers = error_headers(err, req.request_id)
    if body_pending(req):
        headers["connection"] = "close"
    await respond(req.send, err.status, error_body(req, err), headers)
    # Refused before the surface ran: the access line still carries this request id (operators grep for it).
    app.access_log(Exchange(req.request_id, api=surface_of(req.path), endpoint=endpoint_of(req.path)), err)
    if app.metrics is not None:  # counted like any request: no model, no provider
        app.metrics.request(surface_of(req.path), "", "", err.status, 0.0, None)
    return False


def body_pending(req: Request) -> bool:
    """A body is on its way: a request answered without reading it must close the connection (never drain)."""
    return req.headers.get("content-length", "0") != "0" or "transfer-encoding" in req.headers


def endpoint_of(path: str) -> str:
    """The `endpoint` name a surface's Exchange carries, for requests refused before they reach it."""
    if path.startswith("/v1/responses"):
        return "responses"
    if path == "/v1/messages/count_tokens":
        return "count_tokens"
    return "chat/completions" if path in OPENAI_PATHS else "messages"


def surface_of(path: str) -> str:
    """The `api` name a surface's Exchange carries, for requests refused before they reach it."""
    if path.startswith("/v1/responses"):
        return "openai-responses"
    return "openai-chat" if path in OPENAI_PATHS else "anthropic"
