"""Recording admin actions in the audit trail, and reading it back: GET /admin/api/audit, /admin/api/alerts.

Actions: login, login_failed, key.create, key.update, key.budget, key.enable, key.disable, key.rotate,
key.delete; the same create/update/budget/enable/disable for users and teams (their budgets are budgets too),
team.member_add and team.member_remove. The actor is who authenticated (`console` for a password session, `api-token` for
the bearer token, `cli` for the command line); the source is the client address. `changes` holds the
fields that changed, before and after; the key itself and its hash never do (a rotation records the new
visible prefix only).

The entry is written after the action succeeded; if the audit write itself fails the action stands and the
failure is logged loudly (an admin must not be locked out of disabling a leaked key by a full audit table).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from orgate.errors import InvalidRequest
from orgate.server.admin_session import client_addr
from orgate.server.web_pages import send_json
from orgate.store.audit_repo import diff

if TYPE_CHECKING:
    from orgate.server.app import App
    from orgate.server.asgi import Request

KEY_FIELDS = ("name", "prefix", "status", "expires_ms", "budget_micros", "budget_period", "allowed_models", "rpm",
              "tpm", "max_concurrency", "user_id", "team_id")
BUDGET_FIELDS = ("budget_micros", "budget_period")
ACCOUNT_FIELDS = ("name", "status", "budget_micros", "budget_period", "allowed_models", "rpm", "tpm", "email",
                  "external_id", "default_team_id")
ACTIONS = ("login", "login_failed", "key.create", "key.update", "key.budget", "key.enable", "key.disable",
           "key.rotate", "key.delete",
           *(f"{level}.{verb}" for level in ("user", "team") for verb in ("create", "update", "budget", "enable",
                                                                          "disable")),
           "team.member_add", "team.member_remove")


def actor_of(req: Request) -> str:
    admin = req.scope.get("orgate.admin")
    via = getattr(admin, "via", None)
    return {"token": "api-token", "session": "console"}.get(via or "", via or "unknown")


async def record(app: App, req: Request, action: str, *, actor: str | None = None, row: dict[str, Any] | None = None,
                 changes: dict[str, Any] | None = None) -> None:
    try:
        await app.audit.append(actor=actor or actor_of(req), action=action, source=client_addr(req),
                               target_type=action.split(".")[0] if row else None,
                               target_id=row.get("id") if row else None,
                               target_name=row.get("name") if row else None, changes=changes,
                               request_id=req.request_id)
    except Exception:
        app.log.exception("AUDIT WRITE FAILED for %s by %s", action, actor or actor_of(req))


async def changed(app: App, req: Request, before: dict[str, Any], after: dict[str, Any], kind: str = "key"
                  ) -> None:
    """One entry per kind of change: status (enable/disable/delete), budget, everything else. `kind` is key,
    user or team (users and teams carry budgets too)."""
    changes = diff(before, after, KEY_FIELDS if kind == "key" else ACCOUNT_FIELDS)
    status = changes.pop("status", None)
    budget = {k: changes.pop(k) for k in BUDGET_FIELDS if k in changes}
    if budget:
        await record(app, req, f"{kind}.budget", row=after, changes=budget)
    if changes:
        await record(app, req, f"{kind}.update", row=after, changes=changes)
    if status:
        verb = {"active": "enable", "disabled": "disable", "deleted": "delete"}[status["after"]]
        await record(app, req, f"{kind}.{verb}", row=after, changes={"status": status})
        if kind == "key" and status["after"] == "disabled":
            app.alerts.key_disabled(after, actor_of(req))


async def created(app: App, req: Request, row: dict[str, Any], kind: str = "key") -> None:
    await record(app, req, f"{kind}.create", row=row, changes=diff(None, row, KEY_FIELDS if kind == "key"
                                                                         else ACCOUNT_FIELDS))


async def key_rotated(app: App, req: Request, before: dict[str, Any], after: dict[str, Any]) -> None:
    await record(app, req, "key.rotate", row=after, changes=diff(before, after, ("prefix",)))


async def login(app: App, req: Request, *, ok: bool, reason: str | None = None) -> None:
    await record(app, req, "login" if ok else "login_failed", actor="console" if ok else "unknown",
                 changes=None if ok else {"reason": {"before": None, "after": reason}})


# -- reading: GET /admin/api/audit, GET /admin/api/alerts --------------------------------------------------

async def audit_page(app: App, req: Request, p: dict[str, str]) -> None:
    from orgate.server.admin_params import int_param, time_param

    f = {k: (req.query_one(k) or "").strip()[:200] or None for k in ("actor", "action", "target_type", "target_id")}
    if f["action"] is not None and f["action"] not in ACTIONS:
        raise InvalidRequest(f"action: must be one of {', '.join(ACTIONS)}.", param="action")
    limit = int_param(req, "limit", 50, 1, 500) or 50
    rows = await app.audit.page(limit=limit, before_id=int_param(req, "before_id", None, 1),
                                since_ms=time_param(req, "since"), until_ms=time_param(req, "until"), **f)
    nxt = rows[-1]["id"] if len(rows) == limit else None
    await send_json(req, 200, {"data": rows, "next_before_id": nxt, "limit": limit, "actions": ACTIONS})


async def alerts_page(app: App, req: Request, p: dict[str, str]) -> None:
    from orgate.server.admin_params import int_param

    limit = int_param(req, "limit", 50, 1, 500) or 50
    rows = await app.alerts.repo.events(limit, int_param(req, "before_id", None, 1), req.query_one("kind") or None)
    for r in rows:
        r["payload"] = orjson.loads(r["payload"])
        for d in r["deliveries"]:
            d["url"] = masked(d["url"])
    await send_json(req, 200, {"data": rows, "next_before_id": rows[-1]["id"] if len(rows) == limit else None,
                               "thresholds_percent": app.alerts.thresholds,
                               "webhooks": [masked(w.url) for w in app.settings.alerts.webhooks]})


def masked(url: str) -> str:
    """Scheme and host only: webhook paths often carry a token (Slack, Teams)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}/…"
