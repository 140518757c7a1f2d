"""Reading the admin API's requests and shaping its money: query parameters (integers, times, ledger
filters) checked with the parameter named in the error, the JSON body read within its limit, the body fields
keys, users and teams share (name, budget, integer limits, allowed models), and `_usd` strings beside every
`_micros` amount. Shared by admin_api, admin_keys, admin_accounts and admin_audit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from orgate.errors import InvalidRequest
from orgate.governance.keys import PERIODS
from orgate.governance.pricing import usd_to_micros
from orgate.server.asgi import Request

if TYPE_CHECKING:
    from orgate.server.app import App

MAX_BODY = 64 * 1024
LEDGER_FILTERS = ("model", "provider", "status", "api")
INT32_MAX = 2**31 - 1


def money(obj: Any) -> Any:
    """Adds `<name>_usd` (a decimal string) beside every `<name>_micros` integer, recursively."""
    if isinstance(obj, list):
        return [money(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out: dict[str, Any] = {}
    for k, v in obj.items():
        k = str(k)  # SQLAlchemy's quoted_name is a str subclass, which orjson refuses as a key
        out[k] = money(v)
        if k.endswith("_micros") and isinstance(v, int) and not isinstance(v, bool):
            sign = "-" if v < 0 else ""
            out[k[:-7] + "_usd"] = f"{sign}{abs(v) // 1_000_000}.{abs(v) % 1_000_000:06d}"
    return out


def int_param(req: Request, name: str, default: int | None = None, lo: int = 0, hi: int | None = None) -> int | None:
    raw = req.query_one(name)
    if raw is None or raw == "":
        return default
    digits = raw[1:] if raw[:1] == "-" else raw
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 16):
        raise InvalidRequest(f"{name}: must be an integer, got '{raw[:40]}'.", param=name)
    v = int(raw)
    hi = INT32_MAX if hi is None else hi
    if v < lo or v > hi:
        raise InvalidRequest(f"{name}: must be between {lo} and {hi}.", param=name)
    return v


def time_param(req: Request, name: str) -> int | None:
    """Milliseconds since the epoch, or an ISO date/datetime (UTC when it has no offset)."""
    raw = req.query_one(name)
    if not raw:
        return None
    if raw.isascii() and raw.isdigit() and len(raw) <= 15:  # milliseconds up to the year 33658
        return int(raw)
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise InvalidRequest(f"{name}: expected milliseconds or an ISO date, got '{raw[:40]}'.", param=name) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def ledger_filters(req: Request) -> dict[str, Any]:
    f: dict[str, Any] = {k: req.query_one(k) or None for k in LEDGER_FILTERS}
    if f["status"] not in (None, "ok", "error"):
        raise InvalidRequest("status: must be 'ok' or 'error'.", param="status")
    for ident in ("key_id", "user_id", "team_id"):
        f[ident] = int_param(req, ident, None, 1)
    f["since_ms"] = time_param(req, "since")
    f["until_ms"] = time_param(req, "until")
    return f


async def body_json(req: Request) -> dict[str, Any]:
    await req.read_body(MAX_BODY)
    return req.json() if req.body else {}


# Column widths: PostgreSQL's INTEGER is 32-bit; BIGINT values stay within what JavaScript's numbers hold.
BIGINT_MAX = 2**53 - 1
WIDE_FIELDS = ("budget_micros", "expires_ms")


def opt_int(body: dict[str, Any], name: str, lo: int) -> int | None:
    v = body[name]
    if v is None:
        return None
    hi = BIGINT_MAX if name in WIDE_FIELDS else INT32_MAX
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise InvalidRequest(f"{name}: must be an integer from {lo} to {hi}, or null.", param=name)
    return v


def known_fields(body: dict[str, Any], accepted: tuple[str, ...]) -> None:
    for k in body:
        if k not in accepted:
            raise InvalidRequest(f"{k}: unknown field; accepted: {', '.join(accepted)}.", param=k)


def name_and_budget(body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """`name`, `budget_usd` and `budget_period`, validated the same way for keys, users and teams."""
    out: dict[str, Any] = {}
    if "name" in body or creating:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200 or not name.isprintable():
            raise InvalidRequest("name: required, a non-empty string of at most 200 printable characters.",
                                 param="name")
        out["name"] = name.strip()
    if "budget_usd" in body:
        v = body["budget_usd"]
        try:
            out["budget_micros"] = None if v in (None, "") else usd_to_micros(v)
            if (out["budget_micros"] or 0) > BIGINT_MAX:
                raise ValueError(f"must be at most {BIGINT_MAX // 1_000_000} USD")
        except ValueError as e:
            raise InvalidRequest(f"budget_usd: {e}.", param="budget_usd") from None
    if "budget_period" in body:
        if body["budget_period"] not in PERIODS:
            raise InvalidRequest(f"budget_period: must be one of {', '.join(PERIODS)}.", param="budget_period")
        out["budget_period"] = body["budget_period"]
    return out


def allowed_models(app: App, v: Any) -> list[str] | None:
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(m, str) for m in v):
        raise InvalidRequest("allowed_models: must be a list of model ids or null (every model).",
                             param="allowed_models")
    for m in v:
        if not app.catalog.knows(m):
            raise InvalidRequest(f"allowed_models: '{m[:80]}' is not a model this gateway serves.",
                                 param="allowed_models")
    return list(dict.fromkeys(v))
