"""The admin API's keys (under /admin/api/keys): list, create, read, edit, enable/disable, delete, rotate and
one key's usage. admin_api's route table points here; a key row is shown through key_view (never its hash).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orgate.errors import InvalidRequest, NotFound
from orgate.governance import budget
from orgate.governance.keys import now_ms
from orgate.governance.owners import owner_fields
from orgate.server import admin_audit
from orgate.server.admin_params import (
    allowed_models,
    body_json,
    int_param,
    known_fields,
    money,
    name_and_budget,
    opt_int,
)
from orgate.server.asgi import Request
from orgate.server.web_pages import send_json
from orgate.store.admin_queries import AdminQueries
from orgate.store.ledger_repo import LedgerRepo, days_back

if TYPE_CHECKING:
    from orgate.server.app import App

KEY_FIELDS = ("name", "budget_micros", "budget_usd", "budget_period", "expires_ms", "allowed_models", "rpm",
              "tpm", "max_concurrency", "status", "user_id", "team_id")


def key_fields(app: App, body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Validated key columns from a create/update body; unknown fields are refused, by name."""
    known_fields(body, KEY_FIELDS)
    out = name_and_budget(body, creating=creating)
    for name, lo in (("budget_micros", 0), ("expires_ms", 0), ("rpm", 1), ("tpm", 1), ("max_concurrency", 1),
                     ("user_id", 1), ("team_id", 1)):
        if name in body:
            out[name] = opt_int(body, name, lo)
    if "status" in body:
        if body["status"] not in ("active", "disabled"):
            raise InvalidRequest("status: must be 'active' or 'disabled' (DELETE the key to delete it).",
                                 param="status")
        out["status"] = body["status"]
    if "allowed_models" in body:
        out["allowed_models"] = allowed_models(app, body["allowed_models"])
    return out


def key_view(row: dict[str, Any]) -> dict[str, Any]:
    """A key row as the console shows it: never the hash, plus its state and current-period spend."""
    out = {k: v for k, v in row.items() if k != "hash"}
    if not out:
        return out
    start = budget.period_start(out["budget_period"])
    spent = 0 if out["period_start_ms"] < start else out["spent_micros"]
    limit = out["budget_micros"]
    out["period_spent_micros"] = spent
    out["remaining_micros"] = None if limit is None else max(0, limit - spent)
    state = out["status"]
    if state == "active" and out["expires_ms"] is not None and now_ms() >= out["expires_ms"]:
        state = "expired"
    elif state == "active" and limit is not None and spent >= limit:
        state = "exhausted"
    out["state"] = state
    return out


async def _key_or_404(app: App, key_id: int) -> dict[str, Any]:
    row = await app.keys.get(key_id)
    if row is None or row["status"] == "deleted":
        raise NotFound(f"key: no key with id {key_id}.", param="key")
    return row


async def list_keys(app: App, req: Request, p: dict[str, str]) -> None:
    limit = int_param(req, "limit", 50, 1, 500) or 50
    offset = int_param(req, "offset", 0, 0) or 0
    search = (req.query_one("search") or "").strip()[:100] or None
    rows, total = await app.keys.list(limit=limit, offset=offset, search=search,
                                      include_deleted=req.query_one("include_deleted") == "true")
    data = [key_view(r) for r in rows]
    await send_json(req, 200, money({"data": data, "total": total, "limit": limit, "offset": offset}))


async def create_key(app: App, req: Request, p: dict[str, str]) -> None:
    fields = key_fields(app, await body_json(req), creating=True)
    await owner_fields(app.engine, fields)
    name = fields.pop("name")
    plaintext, row = await app.keys.create(prefix=app.settings.keys.prefix, name=name, **fields)
    app.auth.invalidate()
    await admin_audit.created(app, req, row)
    await send_json(req, 201, money({"key": plaintext, "data": key_view(row),
                                     "note": "This is the only time the key is shown."}))


async def get_key(app: App, req: Request, p: dict[str, str]) -> None:
    await send_json(req, 200, money({"data": key_view(await _key_or_404(app, int(p["id"])))}))


async def update_key(app: App, req: Request, p: dict[str, str]) -> None:
    key_id = int(p["id"])
    current = await _key_or_404(app, key_id)
    fields = key_fields(app, await body_json(req), creating=False)
    await owner_fields(app.engine, fields, current)  # moving a key: to a user and/or a team
    row = await app.keys.update(key_id, **fields) if fields else await app.keys.get(key_id)
    app.auth.invalidate()
    assert row is not None
    await admin_audit.changed(app, req, current, row)
    await send_json(req, 200, money({"data": key_view(row)}))


async def set_status(app: App, req: Request, p: dict[str, str]) -> None:
    key_id = int(p["id"])
    before = await _key_or_404(app, key_id)
    row = await app.keys.update(key_id, status="active" if p["action"] == "enable" else "disabled")
    app.auth.invalidate()
    if row is not None:
        await admin_audit.changed(app, req, before, row)
    await send_json(req, 200, money({"data": key_view(row or {})}))


async def delete_key(app: App, req: Request, p: dict[str, str]) -> None:
    key_id = int(p["id"])
    before = await _key_or_404(app, key_id)
    row = await app.keys.update(key_id, status="deleted")
    app.auth.invalidate()
    if row is not None:
        await admin_audit.changed(app, req, before, row)
    await send_json(req, 200, money({"data": key_view(row or {}), "deleted": True}))


async def rotate_key(app: App, req: Request, p: dict[str, str]) -> None:
    key_id = int(p["id"])
    before = await _key_or_404(app, key_id)
    done = await app.keys.rotate(key_id, app.settings.keys.prefix)
    if done is None:
        raise NotFound(f"key: no key with id {key_id}.", param="key")
    app.auth.invalidate()
    await admin_audit.key_rotated(app, req, before, done[1])
    await send_json(req, 200, money({"key": done[0], "data": key_view(done[1]),
                                     "note": "The old key stopped working; this is the only time the new one is shown."}))


async def key_usage(app: App, req: Request, p: dict[str, str]) -> None:
    key_id = int(p["id"])
    await _key_or_404(app, key_id)
    days = int_param(req, "days", 30, 1, 366) or 30
    since = days_back(days)
    q, ledger = AdminQueries(app.engine), LedgerRepo(app.engine)
    body = {"days": days, "totals": await ledger.summary(key_id, since),
            "by_day": await ledger.by_day(key_id, since),
            "by_model": await q.grouped("model", since_ms=since, key_id=key_id, limit=50)}
    await send_json(req, 200, money(body))
