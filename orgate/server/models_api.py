"""GET /v1/models and /v1/models/{id}: the models this key may use.

One shape both official SDKs parse: Anthropic's (`type`, `id`, `display_name`, `created_at`, `has_more`,
`first_id`, `last_id`) and OpenAI's (`object`, `id`, `created`, `owned_by`) side by side; each SDK ignores
the other's fields. Pagination: `limit` (1-1000, default 20 as Anthropic; OpenAI clients send none and get
everything when `limit` is absent and the client is OpenAI-style), `after_id`, `before_id`.
"""

from __future__ import annotations

import calendar
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson

from orgate.errors import GatewayError, InvalidRequest
from orgate.governance.keys import unknown_model
from orgate.routing.catalog import ModelRoute
from orgate.server.asgi import Request, respond
from orgate.server.render import anthropic_error, error_headers, openai_error

if TYPE_CHECKING:
    from orgate.server.app import App


def model_object(route: ModelRoute) -> dict[str, Any]:
    e = route.entry
    created = calendar.timegm(time.strptime(e.created_at, "%Y-%m-%dT%H:%M:%SZ"))
    providers = sorted({t.provider for t in route.targets})
    claude = any(t.family == "claude" for t in route.targets)
    out: dict[str, Any] = {
        "type": "model", "id": route.public_id, "display_name": e.display_name or route.public_id,
        "created_at": e.created_at, "object": "model", "created": created,
        "owned_by": "anthropic" if claude else (route.targets[0].provider if route.targets else "orgate"),
        "max_input_tokens": e.context_window, "max_tokens": e.max_output_tokens,
        "aliases": list(e.aliases), "providers": providers,
    }
    if claude:  # capability data is Anthropic's shape; an OpenAI-compatible model gets none rather than a guess
        out["capabilities"] = {
            "image_input": {"supported": True}, "pdf_input": {"supported": True},
            "thinking": {"supported": True, "types": {t: {"supported": True} for t in e.thinking}},
        }
    return out


def _openai_style(req: Request) -> bool:
    return "anthropic-version" not in req.headers


async def _fail(req: Request, err: GatewayError) -> None:
    body = openai_error(err, req.request_id) if _openai_style(req) else anthropic_error(err, req.request_id)
    await respond(req.send, err.status, body, error_headers(err, req.request_id))


async def list_models(app: App, req: Request) -> None:
    try:
        key = await app.auth.authenticate(req.headers)
        routes = [r for r in app.catalog.routes() if key.may_use(r.public_id)]
        raw_limit = req.query_one("limit")
        try:
            limit = int(raw_limit) if raw_limit else (1000 if _openai_style(req) else 20)
        except ValueError:
            raise InvalidRequest("limit: must be an integer", param="limit") from None
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit: must be between 1 and 1000", param="limit")
        ids = [r.public_id for r in routes]
        after, before = req.query_one("after_id"), req.query_one("before_id")
        if after in ids:
            routes = routes[ids.index(after) + 1 :]
        elif before in ids:
            routes = routes[: ids.index(before)][-limit:]
        page = routes[:limit]
        data = [model_object(r) for r in page]
        body = {
            "object": "list", "data": data, "has_more": len(routes) > len(page),
            "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None,
        }
        await respond(req.send, 200, orjson.dumps(body), {"request-id": req.request_id})
    except GatewayError as e:
        await _fail(req, e)


async def get_model(app: App, req: Request) -> None:
    try:
        key = await app.auth.authenticate(req.headers)
        name = unquote(req.path[len("/v1/models/") :])
        route = app.catalog.resolve(name)
        if route is None or not key.may_use(route.public_id):
            raise unknown_model(name)
        await respond(req.send, 200, orjson.dumps(model_object(route)), {"request-id": req.request_id})
    except GatewayError as e:
        await _fail(req, e)
