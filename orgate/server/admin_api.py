"""The admin HTTP API under /admin/api/: its route table and dispatch, usage summaries, the ledger (keyset
paged, CSV), models, providers and an overview; the keys' handlers are admin_keys', users' and teams'
admin_accounts'. JSON; money as integer micro-USD with a `_usd` decimal string beside it.

Authentication and CSRF live in admin_session; every handler here runs only after it passed. Errors use
the Anthropic error shape; a bad field answers 400 with the field named first in the message.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from orgate.errors import GatewayError, InternalError, InvalidRequest, NotFound
from orgate.governance import budget
from orgate.server import admin_audit, admin_keys, admin_session, web_pages
from orgate.server.admin_params import BIGINT_MAX, int_param, ledger_filters, money
from orgate.server.asgi import Request
from orgate.server.web_pages import send_error, send_json
from orgate.store.admin_queries import GROUPS, AdminQueries, csv_chunks, usage_csv_rows
from orgate.store.ledger_repo import DAY_MS, LedgerRepo, days_back
from orgate.store.outage import unavailable

if TYPE_CHECKING:
    from orgate.server.app import App

ApiHandler = Callable[["App", Request, dict[str, str]], Awaitable[None]]
PREFIX = "/admin/api/"
CSV_PAGE = 1000
CSV_MAX_ROWS = 1_000_000


def register(app: App) -> None:
    from orgate.server import admin_accounts  # noqa: F401  (users and teams: adds its routes to ROUTES)

    for method in ("GET", "POST", "PATCH", "DELETE", "PUT"):
        app.prefix_routes.append((method, PREFIX, dispatch))
        app.routes[(method, "/admin/api")] = dispatch
    admin_session.register(app)
    web_pages.register(app)


# -- usage, ledger -----------------------------------------------------------------------------------------

async def usage(app: App, req: Request, p: dict[str, str]) -> None:
    group = req.query_one("group") or "model"
    if group not in (*GROUPS, "day"):
        raise InvalidRequest(f"group: must be one of {', '.join((*GROUPS, 'day'))}.", param="group")
    f = ledger_filters(req)
    if f["since_ms"] is None:
        f["since_ms"] = days_back(30)
    limit = int_param(req, "limit", 100, 1, 1000) or 100
    rows = await AdminQueries(app.engine).grouped(group, limit=limit, **f)
    await send_json(req, 200, money({"group": group, "since_ms": f["since_ms"], "until_ms": f["until_ms"],
                                     "data": rows}))


async def usage_csv(app: App, req: Request, p: dict[str, str]) -> None:
    """Spend and tokens by team, user, key, model, provider or api as CSV (same filters as /usage)."""
    group = req.query_one("group") or "team"
    if group not in GROUPS:
        raise InvalidRequest(f"group: must be one of {', '.join(GROUPS)}.", param="group")
    f = ledger_filters(req)
    if f["since_ms"] is None:
        f["since_ms"] = days_back(30)
    rows = await AdminQueries(app.engine).grouped(group, limit=10_000, **f)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    await send_csv(req, f"orgate-usage-by-{group}-{stamp}.csv", [usage_csv_rows(group, rows)])


async def ledger_page(app: App, req: Request, p: dict[str, str]) -> None:
    f = ledger_filters(req)
    limit = int_param(req, "limit", 50, 1, 500) or 50
    before = int_param(req, "before_id", None, 1, BIGINT_MAX)
    rows = await LedgerRepo(app.engine).page(limit=limit, before_id=before, **f)
    names = await AdminQueries(app.engine).key_names([r["key_id"] for r in rows if r["key_id"] is not None])
    for r in rows:
        r["key_name"] = names.get(r["key_id"])
    nxt = rows[-1]["id"] if len(rows) == limit else None
    await send_json(req, 200, money({"data": rows, "next_before_id": nxt, "limit": limit}))


async def ledger_csv(app: App, req: Request, p: dict[str, str]) -> None:
    f = ledger_filters(req)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    await send_csv(req, f"orgate-ledger-{stamp}.csv", csv_chunks(LedgerRepo(app.engine), f, CSV_PAGE, CSV_MAX_ROWS))


async def _take(chunks: Any, n: int) -> Any:
    for _ in range(n):
        try:
            yield await anext(chunks)
        except StopAsyncIteration:
            return


async def send_csv(req: Request, filename: str, chunks: Any) -> None:
    headers = {**web_pages.SECURITY, "cache-control": "no-store",
               "content-disposition": f'attachment; filename="{filename}"'}
    raw = [(b"content-type", b"text/csv; charset=utf-8")]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    if hasattr(chunks, "__aiter__"):
        # The header line and the first page before the 200: a query that fails is then answered as an error,
        # not as a 200 cut short.
        first = [chunk async for chunk in _take(chunks, 2)]
        await req.send({"type": "http.response.start", "status": 200, "headers": raw})
        for chunk in first:
            await req.send({"type": "http.response.body", "body": chunk, "more_body": True})
        async for chunk in chunks:
            await req.send({"type": "http.response.body", "body": chunk, "more_body": True})
    else:
        await req.send({"type": "http.response.start", "status": 200, "headers": raw})
        for chunk in chunks:
            await req.send({"type": "http.response.body", "body": chunk, "more_body": True})
    await req.send({"type": "http.response.body", "body": b""})


# -- models, providers, overview ---------------------------------------------------------------------------

def _deployment(app: App, t: Any) -> dict[str, Any]:
    b = app.router.breakers.get(t.label)
    return {"provider": t.provider, "provider_type": t.provider_type, "upstream_model": t.upstream_model,
            "label": t.label, "weight": t.weight, "circuit": app.router.state(t.label),
            "recent_failures": b.failures if b is not None else 0}


async def models(app: App, req: Request, p: dict[str, str]) -> None:
    data = []
    for r in app.catalog.routes():
        rates = {f"{k}_per_mtok_micros": getattr(app.pipeline.prices[r.public_id], k)
                 for k in ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")}
        data.append({"id": r.public_id, "display_name": r.entry.display_name, "aliases": list(r.aliases),
                     "routing": r.entry.routing, "rates": rates,
                     "deployments": [_deployment(app, t) for t in r.targets]})
    await send_json(req, 200, money({"data": data}))


async def providers(app: App, req: Request, p: dict[str, str]) -> None:
    deps: dict[str, list[dict[str, Any]]] = {}
    for r in app.catalog.routes():
        for t in r.targets:
            deps.setdefault(t.provider, []).append({**_deployment(app, t), "model": r.public_id})
    data = []
    for name, prov in app.settings.providers.items():
        mine = deps.get(name, [])
        # Only where a provider lives, never its credentials.
        data.append({"name": name, "type": prov.type, "base_url": prov.base_url, "region": prov.region,
                     "project_id": prov.project_id, "deployments": mine,
                     "open_circuits": sum(1 for d in mine if d["circuit"] != "closed")})
    await send_json(req, 200, {"data": data})


async def overview(app: App, req: Request, p: dict[str, str]) -> None:
    q = AdminQueries(app.engine)
    day = budget.period_start("daily")
    month = budget.period_start("monthly")
    since30 = day - 29 * DAY_MS
    # Sequential on purpose: run concurrently on SQLite these scans contend and take longer (measured).
    today, this_month = await q.summary(day), await q.summary(month)
    by_day = await q.grouped("day", since_ms=since30, limit=400)
    by_model = await q.grouped("model", since_ms=month, limit=20)
    by_provider = await q.grouped("provider", since_ms=month, limit=20)
    top_keys = await q.grouped("key", since_ms=month, limit=10)
    counts = await q.key_counts()
    for s in (today, this_month):
        s["error_rate"] = round(s["errors"] / s["requests"], 4) if s["requests"] else 0.0
    body = {"today": today, "month": this_month, "day_start_ms": day, "month_start_ms": month,
            "by_day": by_day, "by_model": by_model, "by_provider": by_provider, "top_keys": top_keys,
            "keys": counts}
    await send_json(req, 200, money(body))


async def session_info(app: App, req: Request, p: dict[str, str]) -> None:
    admin: admin_session.Admin = req.scope["orgate.admin"]
    await send_json(req, 200, {"authenticated": True, "via": admin.via, "csrf_token": admin.csrf})


ROUTES: list[tuple[str, re.Pattern[str], ApiHandler]] = [
    (m, re.compile(rx), h) for m, rx, h in [
        ("GET", r"session", session_info),
        ("GET", r"overview", overview),
        ("GET", r"keys", admin_keys.list_keys),
        ("POST", r"keys", admin_keys.create_key),
        ("GET", r"keys/(?P<id>[0-9]{1,9})", admin_keys.get_key),
        ("PATCH", r"keys/(?P<id>[0-9]{1,9})", admin_keys.update_key),
        ("DELETE", r"keys/(?P<id>[0-9]{1,9})", admin_keys.delete_key),
        ("POST", r"keys/(?P<id>[0-9]{1,9})/rotate", admin_keys.rotate_key),
        ("POST", r"keys/(?P<id>[0-9]{1,9})/(?P<action>enable|disable)", admin_keys.set_status),
        ("GET", r"keys/(?P<id>[0-9]{1,9})/usage", admin_keys.key_usage),
        ("GET", r"usage", usage),
        ("GET", r"ledger", ledger_page),
        ("GET", r"ledger\.csv", ledger_csv),
        ("GET", r"usage\.csv", usage_csv),
        ("GET", r"models", models),
        ("GET", r"providers", providers),
        ("GET", r"audit", admin_audit.audit_page),
        ("GET", r"alerts", admin_audit.alerts_page),
    ]
]


async def dispatch(app: App, req: Request) -> None:
    try:
        admin = await admin_session.authenticate(app, req)
        req.scope["orgate.admin"] = admin
        rest = req.path[len(PREFIX):] if req.path.startswith(PREFIX) else ""
        matched = [(m, rx.fullmatch(rest), h) for m, rx, h in ROUTES]
        hits = [(m, mt, h) for m, mt, h in matched if mt is not None]
        if not hits:
            raise NotFound(f"No admin route for {req.method} {req.path}.")
        for m, mt, h in hits:
            if m == req.method:
                await h(app, req, mt.groupdict())
                return
        raise GatewayError(f"Method {req.method} is not allowed on {req.path}.", status=405,
                           kind="invalid_request_error")
    except GatewayError as e:
        await send_error(req, e)
    except Exception as e:
        app.log.exception("admin api error")
        await send_error(req, unavailable(e) or InternalError("Internal error."))
