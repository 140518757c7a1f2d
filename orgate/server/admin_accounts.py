"""The admin HTTP API for users and teams (under /admin/api/): create, edit, disable, members, spend.

A user or team has a budget held like a key's (a hard cap, see governance/leases.py), an allowlist that
narrows its keys' models, and a status: disabling one drops the key cache at once (other instances within a
second), so its keys get 403 as fast as a disabled key. Keys are given an owner (and moved) through the keys
routes with `user_id` / `team_id` (checked by governance/owners.py). Importing this module adds its
routes to the admin API's table (admin_api.register does).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from orgate.errors import InvalidRequest
from orgate.governance import budget
from orgate.governance.owners import get_or_404
from orgate.server import admin_api as api
from orgate.server import admin_audit
from orgate.server.admin_keys import key_view
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
from orgate.store.accounts_repo import AccountsRepo
from orgate.store.admin_queries import AdminQueries
from orgate.store.ledger_repo import days_back

if TYPE_CHECKING:
    from orgate.server.app import App

COMMON_FIELDS = ("name", "status", "budget_usd", "budget_micros", "budget_period", "allowed_models", "rpm", "tpm",
                 "metadata")
FIELDS = {"team": COMMON_FIELDS, "user": (*COMMON_FIELDS, "email", "external_id", "default_team_id")}
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def account_fields(app: App, level: str, body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Validated columns from a create/update body; unknown fields are refused by name."""
    known_fields(body, FIELDS[level])
    out = name_and_budget(body, creating=creating)
    for name, lo in (("budget_micros", 0), ("rpm", 1), ("tpm", 1), ("default_team_id", 1)):
        if name in body:
            out[name] = opt_int(body, name, lo)
    if "status" in body:
        if body["status"] not in ("active", "disabled"):
            raise InvalidRequest("status: must be 'active' or 'disabled'.", param="status")
        out["status"] = body["status"]
    if "allowed_models" in body:
        out["allowed_models"] = allowed_models(app, body["allowed_models"])
    if "metadata" in body:
        if body["metadata"] is not None and not isinstance(body["metadata"], dict):
            raise InvalidRequest("metadata: must be an object or null.", param="metadata")
        out["metadata"] = body["metadata"]
    for name, limit in (("email", 320), ("external_id", 255)):
        if name in body:
            v = body[name]
            if v is not None and (not isinstance(v, str) or not v.strip() or len(v) > limit):
                raise InvalidRequest(f"{name}: a non-empty string of at most {limit} characters, or null.", param=name)
            if name == "email" and v is not None and not EMAIL.fullmatch(v.strip()):
                raise InvalidRequest("email: not an email address.", param="email")
            out[name] = v.strip() if isinstance(v, str) else None
    return out


def account_view(row: dict[str, Any]) -> dict[str, Any]:
    """A user or team with its current-period spend, what is left, and its state."""
    out = dict(row)
    spent = 0 if out["period_start_ms"] < budget.period_start(out["budget_period"]) else out["spent_micros"]
    limit = out["budget_micros"]
    out["period_spent_micros"] = spent
    out["remaining_micros"] = None if limit is None else max(0, limit - spent)
    out["state"] = "exhausted" if out["status"] == "active" and limit is not None and spent >= limit \
        else out["status"]
    return out


async def _get(app: App, level: str, ident: int) -> dict[str, Any]:
    return await get_or_404(app.engine, level, ident)


async def _unique(app: App, level: str, fields: dict[str, Any], ident: int | None = None) -> None:
    """Names of teams, and emails / external ids of users, are unique: say which, before SQL refuses."""
    repo = AccountsRepo(app.engine)
    for col in ("name",) if level == "team" else ("email", "external_id"):
        if fields.get(col):
            other = await repo.find(level, fields[col])
            if other is not None and other["id"] != ident and other[col] == fields[col]:
                raise InvalidRequest(f"{col}: another {level} already has '{fields[col][:80]}'.", param=col)
    if fields.get("default_team_id"):
        await _get(app, "team", fields["default_team_id"])


# -- handlers ------------------------------------------------------------------------------------------------

async def list_accounts(app: App, req: Request, p: dict[str, str]) -> None:
    level = p["level"][:-1]
    limit = int_param(req, "limit", 100, 1, 500) or 100
    offset = int_param(req, "offset", 0, 0) or 0
    search = (req.query_one("search") or "").strip()[:100] or None
    rows, total = await AccountsRepo(app.engine).list(level, limit=limit, offset=offset, search=search)
    await send_json(req, 200, money({"data": [account_view(r) for r in rows], "total": total}))


async def create_account(app: App, req: Request, p: dict[str, str]) -> None:
    level = p["level"][:-1]
    fields = account_fields(app, level, await body_json(req), creating=True)
    await _unique(app, level, fields)
    row = await AccountsRepo(app.engine).create(level, **fields)
    await admin_audit.created(app, req, row, level)
    await send_json(req, 201, money({"data": account_view(row)}))


async def get_account(app: App, req: Request, p: dict[str, str]) -> None:
    level, ident = p["level"][:-1], int(p["id"])
    row = account_view(await _get(app, level, ident))
    repo = AccountsRepo(app.engine)
    since = budget.period_start("monthly")
    spend = await AdminQueries(app.engine).grouped("key", since_ms=since, limit=500, **{f"{level}_id": ident})
    by_key = {r["key_id"]: r for r in spend}
    keys = [{**key_view(k), "month": by_key.get(k["id"])} for k in await repo.keys_of(level, ident)]
    body: dict[str, Any] = {"data": row, "keys": keys, "month_start_ms": since}
    if level == "team":
        by_user = {r["user_id"]: r for r in await AdminQueries(app.engine).grouped(
            "user", since_ms=since, limit=500, team_id=ident)}
        body["members"] = [{**account_view(u), "month": by_user.get(u["id"])} for u in await repo.members(ident)]
    else:
        body["teams"] = [account_view(t) for t in await repo.teams_of(ident)]
    await send_json(req, 200, money(body))


async def update_account(app: App, req: Request, p: dict[str, str]) -> None:
    level, ident = p["level"][:-1], int(p["id"])
    before = await _get(app, level, ident)
    fields = account_fields(app, level, await body_json(req), creating=False)
    await _unique(app, level, fields, ident)
    row = await AccountsRepo(app.engine).update(level, ident, **fields)
    app.auth.invalidate()  # a cached key carries its user's and team's status, budget and allowlist
    if row:
        await admin_audit.changed(app, req, before, row, level)
    await send_json(req, 200, money({"data": account_view(row or {})}))


async def set_account_status(app: App, req: Request, p: dict[str, str]) -> None:
    level, ident = p["level"][:-1], int(p["id"])
    before = await _get(app, level, ident)
    row = await AccountsRepo(app.engine).update(level, ident,
                                                status="active" if p["action"] == "enable" else "disabled")
    app.auth.invalidate()
    if row:
        await admin_audit.changed(app, req, before, row, level)
    await send_json(req, 200, money({"data": account_view(row or {})}))


async def add_member(app: App, req: Request, p: dict[str, str]) -> None:
    team_id = int(p["id"])
    await _get(app, "team", team_id)
    body = await body_json(req)
    user_id = body.get("user_id")
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise InvalidRequest("user_id: required, an integer.", param="user_id")
    await _get(app, "user", user_id)
    await AccountsRepo(app.engine).add_member(team_id, user_id)
    await admin_audit.record(app, req, "team.member_add", row={"id": team_id},
                             changes={"user_id": {"before": None, "after": user_id}})
    await send_json(req, 200, {"team_id": team_id, "user_id": user_id, "member": True})


async def remove_member(app: App, req: Request, p: dict[str, str]) -> None:
    team_id, user_id = int(p["id"]), int(p["user_id"])
    await _get(app, "team", team_id)
    await AccountsRepo(app.engine).remove_member(team_id, user_id)
    app.auth.invalidate()
    await admin_audit.record(app, req, "team.member_remove", row={"id": team_id},
                             changes={"user_id": {"before": user_id, "after": None}})
    await send_json(req, 200, {"team_id": team_id, "user_id": user_id, "member": False})


async def account_usage(app: App, req: Request, p: dict[str, str]) -> None:
    level, ident = p["level"][:-1], int(p["id"])
    await _get(app, level, ident)
    days = int_param(req, "days", 30, 1, 366) or 30
    since = days_back(days)
    q = AdminQueries(app.engine)
    f = {f"{level}_id": ident}
    body = {"days": days, "totals": await q.summary(since, **f),
            "by_day": await q.grouped("day", since_ms=since, limit=400, **f),
            "by_model": await q.grouped("model", since_ms=since, limit=50, **f),
            "by_key": await q.grouped("key", since_ms=since, limit=500, **f)}
    if level == "team":
        body["by_user"] = await q.grouped("user", since_ms=since, limit=500, **f)
    await send_json(req, 200, money(body))


_ID = r"(?P<id>[0-9]{1,9})"
_LEVEL = r"(?P<level>users|teams)"
ROUTES = [
    ("GET", _LEVEL, list_accounts),
    ("POST", _LEVEL, create_account),
    ("GET", rf"{_LEVEL}/{_ID}", get_account),
    ("PATCH", rf"{_LEVEL}/{_ID}", update_account),
    ("POST", rf"{_LEVEL}/{_ID}/(?P<action>enable|disable)", set_account_status),
    ("GET", rf"{_LEVEL}/{_ID}/usage", account_usage),
    ("POST", rf"teams/{_ID}/members", add_member),
    ("DELETE", rf"teams/{_ID}/members/(?P<user_id>[0-9]{{1,9}})", remove_member),
]
api.ROUTES.extend((m, re.compile(rx), h) for m, rx, h in ROUTES)
