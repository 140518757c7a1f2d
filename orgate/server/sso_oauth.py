"""The OAuth side of the Claude Code gateway protocol: authorization-server metadata (RFC 8414), device
authorization (RFC 8628), the token endpoint (device-code polling, refresh with rotation) and revocation
(RFC 7009, Claude Code's /logout). Claude Code calls these unauthenticated, form-encoded, without redirects.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import orjson

from orgate.server.admin_session import client_addr, own_origin
from orgate.server.asgi import ClientGone, Request, respond
from orgate.sso.tokens import GrantError

if TYPE_CHECKING:
    from orgate.server.app import App

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
MAX_FORM = 16 * 1024


def register(app: App) -> None:
    r = app.routes
    r[("GET", "/.well-known/oauth-authorization-server")] = metadata
    r[("POST", "/oauth/device_authorization")] = device_authorization
    r[("POST", "/oauth/token")] = token
    r[("POST", "/oauth/revoke")] = revoke


def base_url(app: App, req: Request) -> str:
    """The gateway's public base: configured, else this request's origin (loopback setups)."""
    return (app.settings.sso.public_url or own_origin(req)).rstrip("/")


class PerAddress:
    """At most `limit` events per address in a sliding window (Anthropic's gateway: 30 device codes and 10
    code submissions per 10 minutes); bounded memory."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window = limit, window_s
        self._hits: dict[str, deque[float]] = {}

    def allow(self, addr: str) -> bool:
        now = time.monotonic()
        if len(self._hits) > 10_000:
            self._hits = {a: q for a, q in self._hits.items() if q and q[-1] > now - self.window}
        q = self._hits.setdefault(addr, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        if len(q) >= self.limit:
            return False
        q.append(now)
        return True


async def send_oauth(req: Request, status: int, body: dict[str, object]) -> None:
    await respond(req.send, status, orjson.dumps(body), {**NO_STORE, "request-id": req.request_id})


async def oauth_error(req: Request, e: GrantError) -> None:
    await send_oauth(req, e.status, {"error": e.error, "error_description": e.description})


async def read_form(req: Request) -> dict[str, str]:
    """A form body, as RFC 6749 requires; JSON (or anything else) is an invalid_request."""
    await req.read_body(MAX_FORM)
    ctype = req.headers.get("content-type", "")
    if req.body and not ctype.startswith("application/x-www-form-urlencoded"):
        raise GrantError("invalid_request", "The body must be application/x-www-form-urlencoded.")
    return {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True).items()}


async def metadata(app: App, req: Request) -> None:
    base = base_url(app, req)
    await respond(req.send, 200, orjson.dumps({
        "issuer": base,
        "device_authorization_endpoint": f"{base}/oauth/device_authorization",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "grant_types_supported": [DEVICE_GRANT, "refresh_token"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["openid", "profile", "email"],
        "gateway_protocol_version": 1,
    }), {"cache-control": "public, max-age=300"})


def limiter(app: App, name: str, limit: int) -> PerAddress:
    attr = f"sso_limit_{name}"
    lim = getattr(app, attr, None)
    if lim is None:
        lim = PerAddress(limit, 600)
        setattr(app, attr, lim)
    return lim


async def device_authorization(app: App, req: Request) -> None:
    try:
        await read_form(req)  # Claude Code sends `surface=claude_code`; client_id and scope are never required
        if not limiter(app, "device", app.settings.sso.device_codes_per_address).allow(client_addr(req)):
            raise GrantError("slow_down", "Too many sign-in attempts from this address; wait a few minutes.", 429)
        await app.sso.sweep_now_and_then()
        await send_oauth(req, 200, await app.sso.device.start(base_url(app, req)))
    except GrantError as e:
        await oauth_error(req, e)
    except ClientGone:
        return


async def token(app: App, req: Request) -> None:
    try:
        form = await read_form(req)
        grant = form.get("grant_type", "")
        issuer = base_url(app, req)
        if grant == DEVICE_GRANT:
            if not form.get("device_code"):
                raise GrantError("invalid_request", "device_code is required.")
            issued = await app.sso.device.poll(form["device_code"], issuer)
        elif grant == "refresh_token":
            if not form.get("refresh_token"):
                raise GrantError("invalid_request", "refresh_token is required.")
            issued = await app.sso.refresh(form["refresh_token"], issuer)
        else:
            raise GrantError("unsupported_grant_type", f"grant_type '{grant[:60]}' is not supported here.")
        await send_oauth(req, 200, issued.body())
    except GrantError as e:
        await oauth_error(req, e)
    except ClientGone:
        return


async def revoke(app: App, req: Request) -> None:
    """Always 200 {} (RFC 7009 §2.2): unknown tokens included, so revocation reveals nothing."""
    try:
        form = await read_form(req)
        if form.get("token"):
            await app.sso.tokens.revoke(form["token"])
            app.auth.invalidate()
        await send_oauth(req, 200, {})
    except GrantError as e:
        await oauth_error(req, e)
    except ClientGone:
        return
