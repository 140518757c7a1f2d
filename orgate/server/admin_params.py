"""Reading the admin API's requests and shaping its money: query parameters (integers, times, ledger
filters) checked with the parameter named in the error, the JSON body read within its limit, and `_usd`
strings beside every `_micros` amount. Shared by admin_api, admin_accounts and admin_audit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from orgate.errors import InvalidRequest
from orgate.server.asgi import Request

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
