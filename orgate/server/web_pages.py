"""The web surface's pages and static files, and the security headers every web response carries.

Everything is served from orgate/web/static (no CDN, works offline). The CSP allows only this origin and no
inline script or style, so an injected string in a key name can never run; pages build the DOM with
textContent. Static files are read once and answered with an ETag so a reload costs a 304.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from orgate.errors import GatewayError
from orgate.server.asgi import Request, respond
from orgate.server.render import anthropic_error, error_headers

if TYPE_CHECKING:
    from orgate.server.app import App

STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")
SECURITY = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
PAGES = {"/admin": "console.html", "/admin/login": "console.html", "/usage": "usage.html"}
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".ico": "image/x-icon"}
_cache: dict[str, tuple[bytes, str]] = {}


def register(app: App) -> None:
    for path in PAGES:
        app.routes[("GET", path)] = page
    app.prefix_routes.append(("GET", "/static/", static))


_STATIC_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


def _load(name: str) -> tuple[bytes, str] | None:
    hit = _cache.get(name)
    if hit is not None:
        return hit
    # Only plain files directly inside the static folder: no traversal, no subfolders, no dotfiles, and no
    # name the file system would choke on (NUL, overlong).
    if not _STATIC_NAME.fullmatch(name):
        return None
    path = (STATIC_DIR / name).resolve()
    if path.parent != STATIC_DIR or not path.is_file():
        return None
    body = path.read_bytes()
    _cache[name] = (body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
    return _cache[name]


def _ctype(name: str) -> bytes:
    suffix = Path(name).suffix
    return (_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream").encode()


async def page(app: App, req: Request) -> None:
    loaded = _load(PAGES[req.path])
    if loaded is None:
        await send_error(req, GatewayError("Web assets are missing from this installation.", status=500))
        return
    headers = {**SECURITY, "cache-control": "no-cache"}
    await respond(req.send, 200, loaded[0], headers, b"text/html; charset=utf-8")


async def static(app: App, req: Request) -> None:
    name = req.path[len("/static/"):]
    loaded = _load(name)
    if loaded is None:
        await respond(req.send, 404, b"not found", SECURITY, b"text/plain")
        return
    body, etag = loaded
    headers = {**SECURITY, "cache-control": "no-cache", "etag": etag}
    if req.headers.get("if-none-match") == etag:
        await respond(req.send, 304, b"", headers, _ctype(name))
        return
    await respond(req.send, 200, body, headers, _ctype(name))


async def send_json(req: Request, status: int, obj: Any, extra: dict[str, str] | None = None) -> None:
    headers = {**SECURITY, "cache-control": "no-store", **(extra or {})}
    await respond(req.send, status, orjson.dumps(obj), headers)


async def send_error(req: Request, err: GatewayError, extra: dict[str, str] | None = None) -> None:
    headers = {**SECURITY, "cache-control": "no-store", **error_headers(err, req.request_id), **(extra or {})}
    await respond(req.send, err.status, anthropic_error(err, req.request_id), headers)
