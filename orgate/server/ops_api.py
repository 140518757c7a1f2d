"""Operator endpoints: GET /metrics (Prometheus text format) and GET /ready (readiness).

/health stays the cheap liveness check (no I/O). /ready answers 200 only when the database answers, its
schema is at this build's newest migration, and Redis (when configured) answers PING; otherwise 503 with
the failing check named. Load balancers should route on /ready, restart on /health.

/metrics is served here unless `metrics.port` moves it to its own port (then only there). With
`metrics.token` set it needs `Authorization: Bearer <token>` (compared in constant time).
"""

from __future__ import annotations

import asyncio
import hmac
from typing import TYPE_CHECKING, Any

import orjson

from orgate.server.asgi import Request, respond
from orgate.store.db import current_revision

if TYPE_CHECKING:
    from orgate.server.app import App

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
CHECK_TIMEOUT_S = 2.0


def register(app: App) -> None:
    app.routes[("GET", "/ready")] = app.routes[("GET", "/readyz")] = ready
    if app.metrics is not None and app.settings.metrics.port is None:
        app.routes[("GET", "/metrics")] = metrics


def authorized(token: str | None, header: str | None) -> bool:
    if not token:
        return True
    sent = header[7:].strip() if header and header[:7].lower() == "bearer " else ""
    return hmac.compare_digest(sent.encode(), token.encode())


async def metrics(app: App, req: Request) -> None:
    if not authorized(app.settings.metrics.token, req.headers.get("authorization")):
        await respond(req.send, 401, b"metrics: bearer token required\n", {"www-authenticate": "Bearer"},
                      b"text/plain")
        return
    assert app.metrics is not None
    await respond(req.send, 200, app.metrics.exposition(), {"cache-control": "no-store"}, CONTENT_TYPE)


async def _check(name: str, coro: Any, checks: dict[str, str]) -> None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await coro
        checks[name] = "ok"
    except Exception as e:  # what failed is the answer; never the connection string
        checks[name] = f"failed: {type(e).__name__}"


async def ready(app: App, req: Request) -> None:
    checks: dict[str, str] = {}
    head = app.schema_head

    async def schema() -> None:
        current = await current_revision(app.engine)
        if current != head:
            raise LookupError(f"schema at {current}, this build needs {head}")

    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await schema()
        checks["database"] = "ok"
        checks["migrations"] = "ok"
    except LookupError as e:
        checks["database"], checks["migrations"] = "ok", f"failed: {e}"
    except Exception as e:
        checks["database"] = f"failed: {type(e).__name__}"
    if app.counters is not None:
        await _check("redis", app.counters.client.ping(), checks)
    ok = all(v == "ok" for v in checks.values())
    body = orjson.dumps({"status": "ready" if ok else "not ready", "checks": checks})
    await respond(req.send, 200 if ok else 503, body, {"cache-control": "no-store"})
