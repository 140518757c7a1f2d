"""RFC 8628 device authorization as Claude Code's /login uses it, bound to an OIDC sign-in in the browser.

Claude Code asks for a device code and polls the token endpoint; the person opens the verification page,
confirms the user code with a click (never auto-submitted), is sent to the IdP with PKCE S256, state and
nonce, and comes back to the callback, which must present the same browser-binding cookie that started the
trip. Only then is the grant approved for that person, and the next poll receives tokens.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from orgate.governance.keys import hash_key, now_ms
from orgate.sso.directory import Directory
from orgate.sso.oidc import Identity, OidcClient, SignInRefused
from orgate.sso.policy import Admission, NotAllowed, admit
from orgate.sso.settings import SsoSettings
from orgate.sso.store import SsoStore
from orgate.sso.tokens import GrantError, Issued, Tokens

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels (no words), no look-alikes
LOGIN_TTL_S = 600


def new_user_code() -> str:
    c = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
    return f"{c[:4]}-{c[4:]}"


def normalize_user_code(raw: str) -> str:
    c = "".join(ch for ch in raw.upper() if ch in USER_CODE_ALPHABET)
    return f"{c[:4]}-{c[4:]}" if len(c) == 8 else ""


@dataclass(frozen=True, slots=True)
class Callback:
    """What the browser leg proved: the person (and, for a device login, the approved user code)."""

    purpose: str
    identity: Identity
    admission: Admission
    user: dict[str, Any] | None


class DeviceFlow:
    def __init__(self, settings: SsoSettings, store: SsoStore, oidc: OidcClient, directory: Directory,
                 tokens: Tokens) -> None:
        self.s = settings
        self.store = store
        self.oidc = oidc
        self.directory = directory
        self.tokens = tokens

    async def start(self, base: str) -> dict[str, Any]:
        device_code = secrets.token_urlsafe(32)
        for _ in range(5):  # user codes are unique; a collision in 20^8 is rare, retry anyway
            user_code = new_user_code()
            if await self.store.grant_by_code(user_code) is None:
                break
        await self.store.add_grant(hash_key(device_code), user_code, self.s.device_code_ttl_seconds,
                                   self.s.poll_interval_seconds)
        return {"device_code": device_code, "user_code": user_code, "verification_uri": f"{base}/device",
                "verification_uri_complete": f"{base}/device?user_code={user_code}",
                "expires_in": self.s.device_code_ttl_seconds, "interval": self.s.poll_interval_seconds}

    async def poll(self, device_code: str, issuer: str) -> Issued:
        grant = await self.store.grant(hash_key(device_code))
        now = now_ms()
        if grant is None or grant["status"] == "consumed" or grant["expires_ms"] <= now:
            raise GrantError("expired_token", "The device code expired or was already used; run /login again.")
        if not await self.store.note_poll(grant["device_hash"], grant["last_poll_ms"], now, grant["interval_s"]):
            await self.store.slow_down(grant["device_hash"], now)
            raise GrantError("slow_down", "Polling too fast; wait 5 more seconds between polls.")
        if grant["status"] == "pending":
            raise GrantError("authorization_pending", "Waiting for the browser sign-in.")
        if grant["status"] == "denied":
            raise GrantError("access_denied", "Sign-in was refused.")
        if not await self.store.consume_grant(grant["device_hash"]):
            raise GrantError("expired_token", "The device code was already used; run /login again.")
        user = await self.store.user(grant["sso_user_id"])
        if user is None or user["status"] != "active":
            raise GrantError("access_denied", "Your account on this gateway is disabled.")
        # The IdP refresh token came with the callback (sealed in the grant row, so any instance can serve
        # this poll) and now belongs to the new family.
        family = await self.tokens.open_family(user, grant["idp_refresh"])
        return await self.tokens.issue(family, user, issuer)

    async def begin(self, purpose: str, user_code: str | None, redirect_uri: str) -> tuple[str, str]:
        """(IdP authorization URL, browser-binding secret for the cookie) for a device or admin sign-in."""
        if purpose == "device":
            grant = await self.store.grant_by_code(user_code or "")
            if grant is None or grant["status"] != "pending" or grant["expires_ms"] <= now_ms():
                raise NotAllowed("This code is unknown or expired. Start again with /login in Claude Code.")
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier, browser = secrets.token_urlsafe(64), secrets.token_urlsafe(32)
        await self.store.add_login(state_hash=hash_key(state), purpose=purpose, user_code=user_code, nonce=nonce,
                                   verifier=verifier, browser_hash=hash_key(browser),
                                   expires_ms=now_ms() + LOGIN_TTL_S * 1000)
        return await self.oidc.authorization_url(redirect_uri, state, nonce, verifier), browser

    async def abandon(self, state: str, browser: str | None) -> None:
        """The IdP answered with an error: deny the device grant (Claude Code stops with access_denied)."""
        login = await self.store.take_login(hash_key(state)) if state else None
        if login and browser and hash_key(browser) == login["browser_hash"] and login["purpose"] == "device":
            await self.store.decide_grant(login["user_code"], "denied", None)

    async def finish(self, state: str, code: str, browser: str | None, redirect_uri: str) -> Callback:
        """Checks state and the browser cookie, exchanges the code, applies the policy; approves a device
        grant or denies it. Raises SignInRefused or NotAllowed with a message fit for the page."""
        login = await self.store.take_login(hash_key(state)) if state else None
        if login is None or login["expires_ms"] <= now_ms():
            raise SignInRefused("This sign-in link is unknown or expired (state mismatch). Start again.")
        if not browser or hash_key(browser) != login["browser_hash"]:
            raise SignInRefused("This sign-in was started in another browser. Start again from the same browser.")
        identity = await self.oidc.exchange(redirect_uri, code, login["verifier"], login["nonce"])
        try:
            admission = admit(self.s, identity)
            user = await self.directory.sign_in(identity, admission.team) if login["purpose"] == "device" else None
        except NotAllowed:
            if login["purpose"] == "device":
                await self.store.decide_grant(login["user_code"], "denied", None)
            raise
        if login["purpose"] == "device":
            assert user is not None
            sealed = self.tokens.seal(identity.idp_refresh_token)
            if not await self.store.decide_grant(login["user_code"], "approved", user["id"], sealed):
                raise NotAllowed("This code was already used or expired. Start again with /login.")
        return Callback(login["purpose"], identity, admission, user)
