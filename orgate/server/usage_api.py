"""Key holders' own usage and remaining budget as JSON: GET /v1/usage (also /api/usage).

Authenticated with the key itself; a disabled, expired or exhausted key still sees its usage (and is told
its state), because that is exactly when people look. A deleted or unknown key gets 401.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from orgate.errors import AuthenticationFailed, GatewayError, InternalError, InvalidRequest
from orgate.governance import budget
from orgate.governance.keys import now_ms
from orgate.keyauth import extract_key
from orgate.observe.alerts import crossed
from orgate.server.asgi import Request, respond
from orgate.server.render import anthropic_error, error_headers
from orgate.store.ledger_repo import LedgerRepo, days_back
from orgate.store.outage import unavailable

if TYPE_CHECKING:
    from orgate.server.app import App


def register(app: App) -> None:
    app.routes[("GET", "/v1/usage")] = key_usage
    app.routes[("GET", "/api/usage")] = key_usage


def key_state(key: Any, row: dict[str, Any]) -> str:
    if row["status"] != "active":
        return row["status"]
    if key.expires_ms is not None and now_ms() >= key.expires_ms:
        return "expired"
    if row["budget_micros"] is not None and row["spent_micros"] >= row["budget_micros"]:
        return "exhausted"
    return "active"


async def key_usage(app: App, req: Request) -> None:
    try:
        raw = extract_key(req.headers)
        key = await app.auth.lookup(raw) if raw else None
        if key is None or key.status == "deleted":
            raise AuthenticationFailed("Invalid API key.")
        row = await app.keys.get(key.id)
        assert row is not None
        raw_days = req.query_one("days", "30") or "30"
        if not (raw_days.isascii() and raw_days.isdigit() and len(raw_days) <= 4):
            raise InvalidRequest("days: must be a whole number of days", param="days")
        days = min(max(int(raw_days), 1), 366)
        since = days_back(days)
        ledger = LedgerRepo(app.engine)
        start = budget.period_start(row["budget_period"])
        spent = 0 if row["period_start_ms"] < start else row["spent_micros"]
        remaining = None if row["budget_micros"] is None else max(0, row["budget_micros"] - spent)
        body = {
            "key": {"name": row["name"], "prefix": row["prefix"], "state": key_state(key, row),
                    "expires_ms": row["expires_ms"], "allowed_models": row["allowed_models"]},
            "budget": {"limit_micros": row["budget_micros"], "period": row["budget_period"],
                       "spent_micros": spent, "reserved_micros": row["reserved_micros"],
                       "remaining_micros": remaining, "total_spent_micros": row["total_spent_micros"],
                       # The same thresholds the operator's alerts fire on, and which this period reached.
                       "alert_thresholds_percent": app.alerts.thresholds,
                       "thresholds_reached_percent": crossed(spent, row["budget_micros"], app.alerts.thresholds)},
            "totals": await ledger.summary(key.id, since),
            "by_day": await ledger.by_day(key.id, since),
            "by_model": await ledger.by_group("public_model", key.id, since),
            "recent": [_public_row(r) for r in await ledger.page(key_id=key.id, limit=50)],
            **await _accounts(app, key),
        }
        await respond(req.send, 200, orjson.dumps(body), {"cache-control": "no-store"})
    except Exception as e:
        err = e if isinstance(e, GatewayError) else unavailable(e) or InternalError("Internal server error.")
        if err.status == 500:
            app.log.exception("usage page failed", extra={"request_id": req.request_id})
        await respond(req.send, err.status, anthropic_error(err, req.request_id), error_headers(err, req.request_id))


async def _accounts(app: App, key: Any) -> dict[str, Any]:
    """The key's user and team as their budgets stand: a request is refused when any of the three runs out."""
    from orgate.store.accounts_repo import AccountsRepo

    out: dict[str, Any] = {}
    for level, acct in (("user", key.user), ("team", key.team)):
        row = await AccountsRepo(app.engine).get(level, acct.id) if acct else None
        if row is None:
            continue
        spent = 0 if row["period_start_ms"] < budget.period_start(row["budget_period"]) else row["spent_micros"]
        out[level] = {"name": row["name"], "status": row["status"], "limit_micros": row["budget_micros"],
                      "period": row["budget_period"], "spent_micros": spent,
                      "remaining_micros": None if row["budget_micros"] is None else max(0, row["budget_micros"] - spent),
                      "allowed_models": row["allowed_models"]}
    return out


def _public_row(r: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "ts_ms", "request_id", "api", "model", "public_model", "provider", "stream", "status",
            "error_type", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens",
            "cache_write_1h_tokens", "cost_micros", "cache_savings_micros", "latency_ms", "ttft_ms")
    return {k: r[k] for k in keep}
