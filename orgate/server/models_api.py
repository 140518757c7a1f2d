"""GET /v1/models and /v1/models/{id}: the models this key may use.

One shape both official SDKs parse: Anthropic's (`type`, `id`, `display_name`, `created_at`, `has_more`,
`first_id`, `last_id`) and OpenAI's (`object`, `id`, `created`, `owned_by`) side by side; each SDK ignores
the other's fields. Pagination: `limit` (1-1000, default 20 as Anthropic; OpenAI clients send none and get
everything when `limit` is absent and the client is OpenAI-style), `after_id`, `before_id`. Errors come in the
caller's shape: the path is both APIs', so the headers tell (see _openai_style).

Claude Code's model discovery (`CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1`, `GET /v1/models?limit=1000`)
reads `id`, `display_name` and `description`, and ignores context sizes: it assumes 200K for an id it does
not know unless the id ends in `[1m]`. So every model with a 1M window is listed twice, as itself and as
`<id>[1m]` (the catalog strips the suffix when routing), and the description states window and price.
"""

from __future__ import annotations

import calendar
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson

from orgate.errors import GatewayError, InvalidRequest
from orgate.governance.keys import unknown_model
from orgate.governance.pricing import Rates, format_usd
from orgate.model_families import strip_1m
from orgate.routing.catalog import ModelRoute
from orgate.server.asgi import Request, respond
from orgate.server.render import anthropic_error, error_headers, openai_error

if TYPE_CHECKING:
    from orgate.server.app import App


ONE_M = 1_000_000


def _tokens(n: int) -> str:
    return f"{n // ONE_M}M" if n % ONE_M == 0 else f"{n // 1000}K"


def _description(route: ModelRoute, rates: Rates | None, one_m: bool) -> str:
    e = route.entry
    parts = []
    if e.context_window:
        parts.append(f"{_tokens(e.context_window)} context" + (" (1M variant)" if one_m else ""))
    if e.max_output_tokens:
        parts.append(f"{_tokens(e.max_output_tokens)} output")
    if rates is not None:
        parts.append(f"{format_usd(rates.input).rstrip('0').rstrip('.')} / "
                     f"{format_usd(rates.output).rstrip('0').rstrip('.')} per MTok in/out")
    return ", ".join(parts)


def model_object(route: ModelRoute, rates: Rates | None = None, one_m: bool = False) -> dict[str, Any]:
    e = route.entry
    created = calendar.timegm(time.strptime(e.created_at, "%Y-%m-%dT%H:%M:%SZ"))
    providers = sorted({t.provider for t in route.targets})
    claude = any(t.family == "claude" for t in route.targets)
    name = e.display_name or route.public_id
    out: dict[str, Any] = {
        "type": "model", "id": route.public_id + ("[1m]" if one_m else ""),
        "display_name": name + (" (1M context)" if one_m else ""),
        "description": _description(route, rates, one_m),
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
    """An OpenAI-style caller: neither Anthropic's version header nor its key header. The anthropic SDK sends
    both, but other Anthropic clients (curl, hand-rolled ones) may leave out anthropic-version, which orgate
    defaults elsewhere too; OpenAI's SDKs send the key as a Bearer token only."""
    return "anthropic-version" not in req.headers and "x-api-key" not in req.headers


async def _fail(req: Request, err: GatewayError) -> None:
    body = openai_error(err, req.request_id) if _openai_style(req) else anthropic_error(err, req.request_id)
    await respond(req.send, err.status, body, error_headers(err, req.request_id))


def _listed(app: App, routes: list[ModelRoute]) -> list[dict[str, Any]]:
    """Each model, then its `[1m]` variant when its window is 1M or more."""
    out = []
    for r in routes:
        rates = app.pipeline.prices[r.public_id]
        out.append(model_object(r, rates))
        if (r.entry.context_window or 0) >= ONE_M and any(t.family == "claude" for t in r.targets):
            out.append(model_object(r, rates, one_m=True))
    return out


async def list_models(app: App, req: Request) -> None:
    try:
        key = await app.auth.authenticate(req.headers)
        models = _listed(app, [r for r in app.catalog.routes() if key.may_use(r.public_id)])
        raw_limit = req.query_one("limit")
        try:
            limit = int(raw_limit) if raw_limit else (1000 if _openai_style(req) else 20)
        except ValueError:
            raise InvalidRequest("limit: must be an integer", param="limit") from None
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit: must be between 1 and 1000", param="limit")
        ids = [m["id"] for m in models]
        after, before = req.query_one("after_id"), req.query_one("before_id")
        if after in ids:
            models = models[ids.index(after) + 1 :]
        elif before in ids:
            models = models[: ids.index(before)][-limit:]
        data = models[:limit]
        body = {
            "object": "list", "data": data, "has_more": len(models) > len(data),
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
        if route is None or route.entry.hidden or not key.may_use(route.public_id):
            raise unknown_model(name)
        one_m = strip_1m(name) != name and (route.entry.context_window or 0) >= ONE_M
        obj = model_object(route, app.pipeline.prices[route.public_id], one_m)
        await respond(req.send, 200, orjson.dumps(obj), {"request-id": req.request_id})
    except GatewayError as e:
        await _fail(req, e)
