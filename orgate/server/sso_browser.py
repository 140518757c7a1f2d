"""The browser leg: confirm the user code (a click, never auto-submitted), go to the IdP, come back to the
callback; and the admin console's "Sign in with SSO". Claude Code never calls these; a browser does.

CSRF: the confirming POST must be same-origin (Origin, else Sec-Fetch-Site); the callback must carry the
browser-binding cookie set by that POST (SameSite=Lax, so it survives the IdP's top-level redirect back).
"""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from orgate.server import admin_session
from orgate.server.asgi import ClientGone, Request, respond
from orgate.server.sso_oauth import base_url, limiter
from orgate.server.web_pages import SECURITY
from orgate.sso.device import normalize_user_code
from orgate.sso.oidc import IdpUnavailable, SignInRefused
from orgate.sso.policy import NotAllowed, admin_allowed

if TYPE_CHECKING:
    from orgate.server.app import App

COOKIE = "orgate_sso"
log = logging.getLogger("orgate.sso")


def register(app: App) -> None:
    r = app.routes
    r[("GET", "/device")] = device_page
    r[("POST", "/device")] = device_confirm
    r[("GET", "/oauth/callback")] = callback
    r[("GET", "/admin/sso/login")] = admin_login


def redirect_uri(app: App, req: Request) -> str:
    return base_url(app, req) + "/oauth/callback"


async def page(req: Request, status: int, title: str, body_html: str, extra: dict[str, str] | None = None) -> None:
    doc = (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title></head>"
           f"<body><main><h1>{html.escape(title)}</h1>{body_html}</main></body></html>").encode()
    await respond(req.send, status, doc, {**SECURITY, "cache-control": "no-store", **(extra or {})},
                  b"text/html; charset=utf-8")


async def failed(req: Request, message: str, status: int = 400) -> None:
    await page(req, status, "Sign-in could not be completed", f"<p>{html.escape(message)}</p>")


async def device_page(app: App, req: Request) -> None:
    code = normalize_user_code(req.query_one("user_code") or "")
    value = f' value="{html.escape(code)}"' if code else ""
    await page(req, 200, "Sign in to Claude Code", (
        "<p>Check that this code is the one shown in your terminal, then continue to your organization's "
        "sign-in.</p><form method=post action=/device>"
        f"<label>Code <input name=user_code autocomplete=off required{value}></label> "
        "<button type=submit>Continue</button></form>"))


def same_origin(app: App, req: Request) -> bool:
    origin = req.headers.get("origin")
    if origin is not None:
        return origin == admin_session.own_origin(req) or origin == base_url(app, req)
    return req.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


def cookie_header(req: Request, value: str, max_age: int = 600) -> str:
    secure = "; Secure" if admin_session.is_https(req) else ""
    return f"{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"


async def _to_idp(app: App, req: Request, purpose: str, user_code: str | None) -> None:
    try:
        url, browser = await app.sso.device.begin(purpose, user_code, redirect_uri(app, req))
    except NotAllowed as e:
        await failed(req, str(e))
        return
    except (IdpUnavailable, SignInRefused, OSError) as e:
        log.warning("identity provider unavailable: %s", type(e).__name__)
        await failed(req, "The identity provider could not be reached. Try again in a moment.", 502)
        return
    await respond(req.send, 302, b"", {**SECURITY, "location": url, "cache-control": "no-store",
                                       "set-cookie": cookie_header(req, browser)}, b"text/plain")


async def device_confirm(app: App, req: Request) -> None:
    try:
        await req.read_body(16 * 1024)
    except ClientGone:
        return
    if not same_origin(app, req):
        await failed(req, "Cross-site request refused.", 403)
        return
    if not limiter(app, "confirm", app.settings.sso.code_entries_per_address).allow(admin_session.client_addr(req)):
        await failed(req, "Too many codes entered from this address; wait a few minutes.", 429)
        return
    form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
    code = normalize_user_code(form.get("user_code", ""))
    if not code:
        await failed(req, "That is not a valid code: it has 8 letters, like BCDF-GHJK.")
        return
    await _to_idp(app, req, "device", code)


async def admin_login(app: App, req: Request) -> None:
    if not app.settings.sso.admin_groups:
        await failed(req, "Console sign-in through the identity provider is not configured (sso.admin_groups).", 404)
        return
    await _to_idp(app, req, "admin", None)


async def callback(app: App, req: Request) -> None:
    state, code = req.query_one("state") or "", req.query_one("code") or ""
    browser = admin_session.read_cookie(req, COOKIE)
    clear = {"set-cookie": cookie_header(req, "", 0)}
    if req.query_one("error"):
        # The IdP refused (or the person cancelled): the grant is denied so Claude Code stops polling.
        await app.sso.device.abandon(state, browser)
        await failed(req, "The identity provider did not sign you in.", 403)
        return
    try:
        done = await app.sso.device.finish(state, code, browser, redirect_uri(app, req))
    except (SignInRefused, NotAllowed) as e:
        await failed(req, str(e), 403)
        return
    except (IdpUnavailable, OSError) as e:
        log.warning("identity provider unavailable at callback: %s", type(e).__name__)
        await failed(req, "The identity provider could not be reached. Try again in a moment.", 502)
        return
    except Exception:
        log.exception("sign-in callback failed")
        await failed(req, "Something went wrong on the gateway; the administrator can see it in its log.", 500)
        return
    if done.purpose == "admin":
        await _admin_session(app, req, done.identity, clear)
        return
    await page(req, 200, "Signed in", "<p>You are signed in. Return to your terminal: Claude Code will "
               "continue by itself.</p>", clear)


async def _admin_session(app: App, req: Request, identity: object, clear: dict[str, str]) -> None:
    if not admin_allowed(app.settings.sso, identity):  # type: ignore[arg-type]
        await failed(req, "You are not in an administrators' group of this gateway.", 403)
        return
    cookie, _ = admin_session.sessions(app).mint()
    await respond(req.send, 303, b"", {**SECURITY, "location": "/admin", "cache-control": "no-store",
                                       "set-cookie": admin_session.set_cookie(req, cookie)}, b"text/plain")
