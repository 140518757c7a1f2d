"""A faithful fake OpenID Connect provider on a real port, auto-approving whoever is configured.

It serves what a real IdP serves, from the specs (OIDC Core 1.0, RFC 6749, RFC 7636, RFC 8414): discovery,
a JWKS (rotatable), /authorize (checks client, exact redirect URI, response_type, PKCE S256; then 302 back
with code and state), /token (client_secret_basic, single-use codes bound to client, redirect URI and PKCE
challenge; RS256 ID tokens with iss/aud/sub/email/email_verified/groups/nonce/iat/exp; refresh tokens),
/userinfo. Knobs let a test make it misbehave the way attacks and mistakes look: sign with a key that is
not in the JWKS, issue an expired ID token, deny the person, accept any redirect URI.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

CLIENT_ID = "orgate-test-client"
CLIENT_SECRET = "orgate-test-client-secret-0123456789"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class Person:
    sub: str = "00u-alice"
    email: str = "alice@example.com"
    email_verified: bool | None = True
    name: str = "Alice Example"
    groups: list[str] = field(default_factory=lambda: ["engineering", "claude-users"])


def _new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


class FakeOidc:
    def __init__(self) -> None:
        self.person = Person()
        self.redirect_uris: set[str] = set()
        self.keys = [_new_key("k1")]
        self.rogue = _new_key("k1")  # same kid, not published: a token "signed by another key"
        self.sign_with_rogue = False
        self.id_token_ttl = 300
        self.expired_id_token = False
        self.deny = False
        self.lax_redirects = False
        self.refuse_refresh = False
        self.client_public_key: RSAKey | None = None  # registered for private_key_jwt
        self.assertions = 0
        self.codes: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, Person] = {}
        self.requests: list[tuple[str, str]] = []
        self.collected: list[tuple[str, str, bytes]] = []  # (path, content-type, body) at /collector
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    def reset(self) -> None:
        self.person = Person()
        self.sign_with_rogue = self.expired_id_token = self.deny = self.lax_redirects = False
        self.refuse_refresh = False
        self.requests.clear()

    def rotate(self) -> None:
        """A new signing key is published (old one kept in the JWKS until the next rotation)."""
        self.keys = [_new_key(f"k{len(self.keys) + 1}"), self.keys[0]]

    # -- endpoints -----------------------------------------------------------------------------------
    async def _discovery(self, request: web.Request) -> web.Response:
        u = self.url
        return web.json_response({
            "issuer": u, "authorization_endpoint": f"{u}/authorize", "token_endpoint": f"{u}/token",
            "userinfo_endpoint": f"{u}/userinfo", "jwks_uri": f"{u}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "profile", "email", "offline_access", "groups"],
        })

    async def _jwks(self, request: web.Request) -> web.Response:
        return web.json_response(KeySet(self.keys).as_dict(private=False))

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        self.requests.append(("authorize", str(request.rel_url)))
        redirect = q.get("redirect_uri", "")
        if q.get("client_id") != CLIENT_ID:
            return web.Response(status=400, text="unknown client")
        if redirect not in self.redirect_uris and not self.lax_redirects:
            return web.Response(status=400, text="redirect_uri is not registered for this client")
        if q.get("response_type") != "code" or "openid" not in q.get("scope", "").split():
            return web.Response(status=400, text="bad response_type or scope")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return web.Response(status=400, text="PKCE S256 required")
        if self.deny:
            return _redirect(redirect, {"error": "access_denied", "state": q.get("state", "")})
        code = secrets.token_urlsafe(24)
        self.codes[code] = {"redirect_uri": redirect, "challenge": q["code_challenge"], "nonce": q.get("nonce"),
                            "person": self.person, "at": time.time()}
        return _redirect(redirect, {"code": code, "state": q.get("state", "")})

    def _client_ok(self, request: web.Request, form: Any) -> bool:
        if form.get("client_assertion_type") == ASSERTION_TYPE:
            return self._assertion_ok(form.get("client_assertion", ""))
        auth = request.headers.get("authorization", "")
        if auth.startswith("Basic "):
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            cid, secret = form.get("client_id", ""), form.get("client_secret", "")
        return cid == CLIENT_ID and secrets.compare_digest(secret, CLIENT_SECRET)

    def _assertion_ok(self, assertion: str) -> bool:
        """private_key_jwt (RFC 7523): signed by the client's registered key, about this client, for us."""
        if self.client_public_key is None:
            return False
        try:
            claims = jwt.decode(assertion, self.client_public_key, algorithms=["RS256"]).claims
            jwt.JWTClaimsRegistry(iss={"essential": True, "value": CLIENT_ID},
                                  sub={"essential": True, "value": CLIENT_ID},
                                  aud={"essential": True, "value": f"{self.url}/token"},
                                  exp={"essential": True}).validate(claims)
        except Exception:  # noqa: BLE001 -- any failure is an unauthenticated client
            return False
        self.assertions += 1
        return True

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.requests.append(("token", form.get("grant_type", "")))
        if not self._client_ok(request, form):
            return web.json_response({"error": "invalid_client"}, status=401)
        if form.get("grant_type") == "refresh_token":
            person = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
            if person is None or self.refuse_refresh:
                return web.json_response({"error": "invalid_grant"}, status=400)
            return web.json_response(self._tokens(person, None))
        grant = self.codes.pop(form.get("code", ""), None)  # single use
        if grant is None or time.time() - grant["at"] > 60:
            return web.json_response({"error": "invalid_grant", "error_description": "unknown code"}, status=400)
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return web.json_response({"error": "invalid_grant", "error_description": "redirect_uri"}, status=400)
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if digest != grant["challenge"]:
            return web.json_response({"error": "invalid_grant", "error_description": "PKCE verifier"}, status=400)
        return web.json_response(self._tokens(grant["person"], grant["nonce"]))

    def _tokens(self, person: Person, nonce: str | None) -> dict[str, Any]:
        now = int(time.time())
        exp = now - 3600 if self.expired_id_token else now + self.id_token_ttl
        claims: dict[str, Any] = {"iss": self.url, "aud": CLIENT_ID, "sub": person.sub, "email": person.email,
                                  "name": person.name, "groups": person.groups, "iat": now - 5, "exp": exp,
                                  "auth_time": now}
        if person.email_verified is not None:
            claims["email_verified"] = person.email_verified
        if nonce:
            claims["nonce"] = nonce
        key = self.rogue if self.sign_with_rogue else self.keys[0]
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)
        refresh = secrets.token_urlsafe(24)
        self.refresh_tokens[refresh] = person
        return {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 3600,
                "id_token": id_token, "refresh_token": refresh, "scope": "openid profile email offline_access"}

    async def _collect(self, request: web.Request) -> web.Response:
        """Stands in for the operator's OTLP/HTTP collector (hosted here to spare the tests another server)."""
        self.collected.append((request.path, request.headers.get("content-type", ""), await request.read()))
        return web.Response(status=200, body=b"", content_type="application/x-protobuf")

    async def _userinfo(self, request: web.Request) -> web.Response:
        p = self.person
        return web.json_response({"sub": p.sub, "email": p.email, "name": p.name, "groups": p.groups})

    # -- server --------------------------------------------------------------------------------------
    def start(self) -> str:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_get("/.well-known/openid-configuration", self._discovery)
            app.router.add_get("/jwks", self._jwks)
            app.router.add_get("/authorize", self._authorize)
            app.router.add_post("/token", self._token)
            app.router.add_get("/userinfo", self._userinfo)
            app.router.add_post("/collector/v1/{signal}", self._collect)
            self._runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)
        return self.url

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)


def _redirect(uri: str, params: dict[str, str]) -> web.Response:
    sep = "&" if "?" in uri else "?"
    return web.Response(status=302, headers={"location": uri + sep + urlencode(params)})
