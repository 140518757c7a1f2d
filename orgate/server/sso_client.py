"""What a signed-in Claude Code fetches besides inference: managed settings (`GET /managed/settings`, the
envelope with ETag/304) and its OTLP/HTTP telemetry (`POST /v1/{metrics,logs,traces}`, always answered 200).
Also the admin API for both: managed settings per scope (global or team), people, telemetry summaries.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import orjson

from orgate.errors import GatewayError, InvalidRequest, NotFound
from orgate.governance.keys import now_ms
from orgate.keyauth import extract_key
from orgate.server import admin_session
from orgate.server.asgi import ClientGone, Request, respond
from orgate.server.preauth import body_pending
from orgate.server.render import anthropic_error, error_headers
from orgate.server.web_pages import send_error, send_json
from orgate.sso import managed, telemetry
from orgate.sso.service import DAY_MS

if TYPE_CHECKING:
    from orgate.server.app import App

log = logging.getLogger("orgate.sso")
ADMIN = "/admin/api/sso/"
MAX_TELEMETRY = 8 * 1024 * 1024


def register(app: App) -> None:
    r = app.routes
    r[("GET", "/managed/settings")] = managed_settings
    for path in telemetry.SIGNALS:
        r[("POST", path)] = otlp
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        app.prefix_routes.insert(0, (method, ADMIN, admin))


async def _person(app: App, req: Request) -> tuple[Any, dict[str, Any]]:
    cred = extract_key(req.headers) or ""
    return await app.auth.person(cred)


async def managed_settings(app: App, req: Request) -> None:
    try:
        _, user = await _person(app, req)
        env = await app.sso.managed_for(user)
        if env is None:
            raise NotFound("No managed settings apply to you.")
    except GatewayError as e:
        await respond(req.send, e.status, anthropic_error(e, req.request_id), error_headers(e, req.request_id))
        return
    tag = managed.etag(env)
    headers = {"etag": tag, "cache-control": "private, no-cache", "x-cc-gateway-version": "orgate-1"}
    fresh = managed.not_modified(req.headers.get("if-none-match"), tag)
    await app.sso.count(user, "gateway:managed_settings_304" if fresh else "gateway:managed_settings_200")
    if fresh:
        await req.send({"type": "http.response.start", "status": 304,
                        "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
        await req.send({"type": "http.response.body", "body": b""})
        return
    await respond(req.send, 200, orjson.dumps(env), headers)


async def otlp(app: App, req: Request) -> None:
    """Never fails the exporter: a bad or unauthenticated export is dropped and answered 200 all the same
    (an OTLP error status makes the client's exporter log an error on every flush). The token is checked
    before the body is read (server/preauth.py): an unknown sender's export is never read, and the
    connection closes instead of draining it."""
    ctype = req.headers.get("content-type", "application/x-protobuf").lower()
    signal = telemetry.SIGNALS[req.path]
    body, answer_type = telemetry.empty_answer(ctype)
    try:
        _, user = await _person(app, req)
    except Exception as e:  # noqa: BLE001 -- telemetry must never fail the client
        log.info("telemetry dropped: %s", type(e).__name__)
        await respond(req.send, 200, body, {"connection": "close"} if body_pending(req) else {}, answer_type)
        return
    try:
        raw = await req.read_body(MAX_TELEMETRY)
    except ClientGone:
        return
    except GatewayError:
        raw = b""
    try:
        data = telemetry.inflate(raw, req.headers.get("content-encoding"))
        await app.sso.record_telemetry(user, signal, data, ctype)
        _forward(app, req.path, raw, req.headers)
    except Exception as e:  # noqa: BLE001 -- telemetry must never fail the client
        log.info("telemetry dropped: %s", type(e).__name__)
    await respond(req.send, 200, body, {}, answer_type)


def _forward(app: App, path: str, raw: bytes, headers: dict[str, str]) -> None:
    """Relays the export verbatim to the operator's collector, in the background, best effort."""
    url = app.settings.sso.telemetry_forward_url
    if not url:
        return
    keep = {k: v for k, v in headers.items() if k in ("content-type", "content-encoding")}

    async def send() -> None:
        try:
            await app.sso.oidc.http.post(url.rstrip("/") + path, content=raw, headers=keep)
        except Exception as e:  # noqa: BLE001
            log.warning("telemetry forward failed: %s", type(e).__name__)

    task = asyncio.get_running_loop().create_task(send())
    app.sso_forwards = getattr(app, "sso_forwards", set())
    app.sso_forwards.add(task)
    task.add_done_callback(app.sso_forwards.discard)


# -- admin API ---------------------------------------------------------------------------------------------

async def admin(app: App, req: Request) -> None:
    try:
        await admin_session.authenticate(app, req)
        rest = req.path[len(ADMIN):].strip("/").split("/")
        if rest[0] == "managed-settings":
            await _admin_managed(app, req, "/".join(rest[1:]))
        elif rest[0] == "users":
            await _admin_users(app, req, rest[1] if len(rest) > 1 else "")
        elif rest[0] == "sessions" and req.method == "GET":
            await app.auth.flush_sessions()
            days = int(req.query_one("days", "7") or "7")
            await send_json(req, 200, {"data": await app.sso.store.sessions(now_ms() - days * DAY_MS)})
        elif rest[0] == "telemetry" and req.method == "GET":
            by = req.query_one("by", "user")
            if by not in ("user", "team"):
                raise InvalidRequest("by: must be 'user' or 'team'.", param="by")
            days = int(req.query_one("days", "30") or "30")
            since = now_ms() // DAY_MS * DAY_MS - days * DAY_MS
            await send_json(req, 200, {"by": by, "data": await app.sso.store.telemetry(since, by)})
        else:
            raise NotFound(f"No admin route {req.method} {req.path}.")
    except GatewayError as e:
        await send_error(req, e)
    except ClientGone:
        return


async def _admin_managed(app: App, req: Request, scope: str) -> None:
    """`global` (or empty) is the default for everyone; any other scope is a team name."""
    scope = "" if scope in ("", "global") else scope
    if req.method == "GET":
        everything = await app.sso.store.all_managed()
        data = everything if not scope else {scope: everything.get(scope)}
        await send_json(req, 200, {"global": data.pop("", None), "teams": data})
    elif req.method == "PUT":
        await req.read_body(256 * 1024)
        body = req.json()
        settings = body.get("settings", body)
        if not isinstance(settings, dict):
            raise InvalidRequest("settings: must be a JSON object.", param="settings")
        for forbidden in ("forceLoginMethod", "forceLoginGatewayUrl"):  # ignored by clients when pushed
            if forbidden in settings:
                raise InvalidRequest(f"settings.{forbidden}: only the machine's own managed-settings.json "
                                     "can set it; Claude Code ignores it when a gateway pushes it.")
        await app.sso.store.put_managed(scope, settings)
        await send_json(req, 200, {"scope": scope or "global", "settings": settings})
    elif req.method == "DELETE":
        if not await app.sso.store.delete_managed(scope):
            raise NotFound(f"No managed settings for '{scope or 'global'}'.")
        await send_json(req, 200, {"deleted": scope or "global"})
    else:
        raise NotFound("Unsupported method.")


async def _admin_users(app: App, req: Request, ident: str) -> None:
    if req.method == "GET" and not ident:
        users = await app.sso.store.users()
        await send_json(req, 200, {"data": [{**u, "groups": orjson.loads(u["groups"] or "[]")} for u in users]})
        return
    if req.method != "PATCH" or not ident.isdigit():
        raise NotFound("Use GET /admin/api/sso/users or PATCH /admin/api/sso/users/<id>.")
    await req.read_body(16 * 1024)
    status = req.json().get("status")
    if status not in ("active", "disabled"):
        raise InvalidRequest("status: must be 'active' or 'disabled'.", param="status")
    user = await app.sso.directory.set_status(int(ident), status)
    if user is None:
        raise NotFound(f"No signed-in person with id {ident}.")
    app.auth.invalidate()
    await send_json(req, 200, {**user, "groups": orjson.loads(user["groups"] or "[]")})
