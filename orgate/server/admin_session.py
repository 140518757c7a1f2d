"""Who may use /admin: the operator's bearer token, or a console session made by logging in.

Credentials and what they can never be:
- `Authorization: Bearer <admin.token>` (constant-time compare). Bearer auth carries no ambient authority,
  so it needs no CSRF token. When no token is configured the bearer path is disabled (403, says so).
- A console session cookie, minted by POST /admin/login with the admin password (or the admin token).
  The cookie holds `<random id>.<expiry>.<HMAC>` signed with a key derived from the server secret *and* the
  admin credentials, so changing the password logs every session out; it never holds the credential itself.
  It is HttpOnly, SameSite=Strict, Path=/admin, and Secure when the request came over https.
- A key holder's API key is never an admin credential: presented as one it gets 403 and counts as a failure.

CSRF: a cookie-authenticated POST/PATCH/DELETE must carry the session's CSRF token (HMAC of the session id)
in `x-csrf-token` (or a `csrf_token` form field), and its Origin, when sent, must be this server's origin.

Login and bearer throttling: per client address, the first FREE_FAILURES wrong passwords or admin tokens
cost nothing; after that each failure doubles the wait before the next attempt is even checked (1 s, 2 s,
4 s ... up to 5 min), answered 429 with retry-after rather than by sleeping, so waiting attackers hold no
connections. An attempt counts as failed before it is checked (success clears it), so 40 concurrent guesses
meet the lockout as they arrive. The price: a neighbour at the same address can delay the operator too.
Sessions are stateless (any instance verifies them); logout revokes the id in this process's memory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orgate.errors import AuthenticationFailed, GatewayError, InvalidRequest, PermissionDenied, RateLimited

if TYPE_CHECKING:
    from orgate.server.app import App
    from orgate.server.asgi import Request

COOKIE = "orgate_admin"
SESSION_TTL_S = 12 * 3600
FREE_FAILURES = 3
MAX_DELAY_S = 300.0
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM = "application/x-www-form-urlencoded"
FORM_LIMIT = 64 * 1024  # the admin API's own body limit


@dataclass(frozen=True, slots=True)
class Admin:
    via: str  # "token" | "session"
    session_id: str | None = None
    csrf: str | None = None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _digest(value: str | None) -> bytes:
    return hashlib.sha256((value or "").encode()).digest()


class LoginThrottle:
    """Exponential delay after repeated failures, per client address."""

    def __init__(self) -> None:
        self._state: dict[str, tuple[int, float]] = {}  # address -> (failures, next attempt allowed at)

    def check(self, addr: str) -> None:
        failures, allowed_at = self._state.get(addr, (0, 0.0))
        wait = allowed_at - time.monotonic()
        if wait > 0:
            raise RateLimited(f"Too many failed logins; try again in {int(wait) + 1} s.", retry_after=wait)

    def attempt(self, addr: str) -> None:
        """Count an attempt as failed before it is checked (success clears it): concurrent guesses then meet
        the lockout as they arrive, instead of all being checked before the first failure is recorded."""
        self.check(addr)
        self.failed(addr)

    def failed(self, addr: str) -> None:
        if len(self._state) > 10_000:  # bounded: a spray from many addresses cannot grow memory
            now = time.monotonic()
            self._state = {a: s for a, s in self._state.items() if s[1] > now}
        failures = self._state.get(addr, (0, 0.0))[0] + 1
        delay = 0.0 if failures < FREE_FAILURES else min(2.0 ** (failures - FREE_FAILURES), MAX_DELAY_S)
        self._state[addr] = (failures, time.monotonic() + delay)

    def succeeded(self, addr: str) -> None:
        self._state.pop(addr, None)


class Sessions:
    def __init__(self, secret: bytes, password: str | None, token: str | None) -> None:
        # Deriving the key from the admin credentials invalidates every session when they change.
        self._key = hmac.new(secret, b"orgate-admin-session|" + _digest(password) + _digest(token),
                             hashlib.sha256).digest()
        self._revoked: dict[str, int] = {}
        self.throttle = LoginThrottle()

    def _sign(self, msg: str) -> str:
        return _b64(hmac.new(self._key, msg.encode(), hashlib.sha256).digest())

    def mint(self) -> tuple[str, str]:
        """A new session: (cookie value, csrf token)."""
        sid = secrets.token_urlsafe(24)
        exp = int(time.time()) + SESSION_TTL_S
        body = f"{sid}.{exp}"
        return f"{body}.{self._sign(body)}", self.csrf_for(sid)

    def csrf_for(self, sid: str) -> str:
        return self._sign("csrf|" + sid)

    def verify(self, value: str) -> str | None:
        """The session id of a valid, unexpired, unrevoked cookie value, else None."""
        parts = value.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        sid, exp, sig = parts
        if not hmac.compare_digest(sig.encode(), self._sign(f"{sid}.{exp}").encode()):
            return None
        if int(exp) <= time.time() or sid in self._revoked:
            return None
        return sid

    def revoke(self, sid: str) -> None:
        now = int(time.time())
        self._revoked = {s: e for s, e in self._revoked.items() if e > now}
        self._revoked[sid] = now + SESSION_TTL_S


def sessions(app: App) -> Sessions:
    s = getattr(app, "admin_sessions", None)
    if s is None:
        s = Sessions(app.secret, app.settings.admin.password, app.settings.admin.token)
        app.admin_sessions = s  # type: ignore[attr-defined]
    return s


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two credentials; a blank one never matches anything (it is no credential)."""
    return bool(a and b and a.strip() and b.strip()) and hmac.compare_digest(a.encode(), b.encode())


def configured(app: App) -> bool:
    a, sso = app.settings.admin, app.settings.sso
    password_or_token = bool((a.password or "").strip() or (a.token or "").strip())
    return password_or_token or bool(sso.enabled and sso.admin_groups)


def is_https(req: Request) -> bool:
    proto = req.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return proto == "https" or req.scope.get("scheme") == "https"


def own_origin(req: Request) -> str:
    # The Host header only: X-Forwarded-Host is the client's to set unless a trusted proxy rewrites it, and
    # trusting it would let a request vouch for its own origin.
    host = req.headers.get("host", "")
    return ("https://" if is_https(req) else "http://") + host.split(",")[0].strip()


def client_addr(req: Request) -> str:
    client = req.scope.get("client")
    return str(client[0]) if client else "?"


def read_cookie(req: Request, name: str = COOKIE) -> str | None:
    for part in req.headers.get("cookie", "").split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


def set_cookie(req: Request, value: str, max_age: int = SESSION_TTL_S) -> str:
    secure = "; Secure" if is_https(req) else ""
    return f"{COOKIE}={value}; Path=/admin; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"


async def is_key_holder(app: App, credential: str) -> bool:
    return bool(credential) and await app.auth.lookup(credential) is not None


async def check_password(app: App, credential: str) -> bool:
    """True for the admin password or token; raises for an API key (which is never an admin credential)."""
    a = app.settings.admin
    if same(credential, a.password) or same(credential, a.token):
        return True
    if await is_key_holder(app, credential):
        raise PermissionDenied("API keys cannot sign in to the admin console; use the admin password.")
    return False


async def authenticate(app: App, req: Request) -> Admin:
    """The admin behind a request, or an error; checks CSRF and Origin on unsafe cookie requests."""
    if not configured(app):
        raise PermissionDenied("The admin API is disabled: set ORGATE_ADMIN__TOKEN or ORGATE_ADMIN__PASSWORD.")
    auth = req.headers.get("authorization")
    if auth is not None and not app.settings.admin.token:
        return await _bearer(app, auth)  # bearer access is off: nothing to guess, nothing to throttle
    if auth is not None:  # wrong tokens are throttled per address like wrong passwords
        throttle, addr = sessions(app).throttle, client_addr(req)
        throttle.attempt(addr)
        admin = await _bearer(app, auth)
        throttle.succeeded(addr)
        return admin
    cookie = read_cookie(req)
    sid = sessions(app).verify(cookie) if cookie else None
    if sid is None:
        raise AuthenticationFailed("Admin credential required: Authorization: Bearer <admin token>, or log in at /admin.")
    admin = Admin("session", sid, sessions(app).csrf_for(sid))
    if req.method in UNSAFE:
        check_csrf(req, admin.csrf, await _form_csrf(req))
    return admin


async def _form_csrf(req: Request) -> str | None:
    """The `csrf_token` field of an urlencoded form body (what an HTML form can send), when no header is."""
    if req.headers.get("x-csrf-token") or not req.headers.get("content-type", "").startswith(FORM):
        return None
    from urllib.parse import parse_qs

    await req.read_body(FORM_LIMIT)  # read once: the handler gets the same body
    return parse_qs(req.body.decode("utf-8", "replace")).get("csrf_token", [None])[0]


async def _bearer(app: App, auth: str) -> Admin:
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    configured_token = app.settings.admin.token
    if same(token, configured_token):
        return Admin("token")
    if await is_key_holder(app, token):
        raise PermissionDenied("API keys are not admin credentials.")
    if not configured_token:
        raise PermissionDenied("Bearer admin access is disabled: no admin token is configured (ORGATE_ADMIN__TOKEN).")
    raise AuthenticationFailed("Invalid admin token.")


def check_csrf(req: Request, expected: str | None, form_value: str | None = None) -> None:
    origin = req.headers.get("origin")
    if origin is not None and origin != own_origin(req):
        raise PermissionDenied("Cross-origin request refused.")
    sent = req.headers.get("x-csrf-token") or form_value
    if not same(sent, expected):
        raise PermissionDenied("Missing or invalid CSRF token (x-csrf-token header or csrf_token form field).")


def check_origin(req: Request) -> None:
    origin = req.headers.get("origin")
    if origin is not None and origin != own_origin(req):
        raise PermissionDenied("Cross-origin request refused.")


# -- handlers: POST /admin/login, POST /admin/logout, GET /admin/api/session ---------------------------------

def register(app: App) -> None:
    app.routes[("POST", "/admin/login")] = login
    app.routes[("POST", "/admin/logout")] = logout


async def _credential(req: Request) -> tuple[str, bool, dict[str, str]]:
    """(credential, came as an HTML form, form fields) from a JSON or urlencoded body."""
    from urllib.parse import parse_qs

    await req.read_body(16 * 1024)
    ctype = req.headers.get("content-type", "")
    if ctype.startswith(FORM):
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
        return form.get("password", ""), True, form
    body = req.json()
    password = body.get("password")
    if not isinstance(password, str):
        raise InvalidRequest("password: required string.", param="password")
    return password, False, {}


async def login(app: App, req: Request) -> None:
    from orgate.server import admin_audit
    from orgate.server.web_pages import send_error, send_json

    s, addr = sessions(app), client_addr(req)
    try:
        if not configured(app):
            raise PermissionDenied("The admin console is disabled: set ORGATE_ADMIN__PASSWORD.")
        check_origin(req)  # login CSRF: another site must not sign a browser into this console
        s.throttle.attempt(addr)
        credential, is_form, _ = await _credential(req)
        if not await check_password(app, credential):
            raise AuthenticationFailed("Wrong admin password.")
    except GatewayError as e:
        await admin_audit.login(app, req, ok=False, reason=e.message)
        if req.method == "POST" and req.headers.get("content-type", "").startswith("application/x-www-form"):
            await _redirect(req, "/admin?login=failed")
            return
        await send_error(req, e)
        return
    s.throttle.succeeded(addr)
    await admin_audit.login(app, req, ok=True)
    cookie, csrf = s.mint()
    if is_form:
        await _redirect(req, "/admin", {"set-cookie": set_cookie(req, cookie)})
        return
    await send_json(req, 200, {"authenticated": True, "csrf_token": csrf}, {"set-cookie": set_cookie(req, cookie)})


async def logout(app: App, req: Request) -> None:
    from orgate.server.web_pages import send_error, send_json

    try:
        admin = await authenticate(app, req)
    except GatewayError as e:
        await send_error(req, e)
        return
    if admin.session_id:
        sessions(app).revoke(admin.session_id)
    await send_json(req, 200, {"authenticated": False}, {"set-cookie": set_cookie(req, "", 0)})


async def _redirect(req: Request, location: str, extra: dict[str, str] | None = None) -> None:
    from orgate.server.asgi import respond
    from orgate.server.web_pages import SECURITY

    await respond(req.send, 303, b"", {**SECURITY, "location": location, "cache-control": "no-store", **(extra or {})},
                  b"text/plain")
