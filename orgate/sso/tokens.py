"""Gateway-issued tokens: short-lived access JWTs and single-use refresh tokens, stored as hashes.

The access token is a JWT (HS256, key derived from the server secret) because Claude Code reads `exp` and
takes telemetry identity (`sub`, `email`) from it; orgate itself never trusts its claims: a request is
admitted only when the token's SHA-256 is in sso_tokens, unrevoked and unexpired, so revocation is
immediate. Refresh tokens rotate on every use; presenting a spent one is treated as theft and revokes the
whole family (every token of that sign-in).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken
from joserfc import jwt
from joserfc.jwk import OctKey

from orgate.governance.keys import hash_key, now_ms
from orgate.sso.settings import SsoSettings
from orgate.sso.store import SsoStore

REFRESH_PREFIX = "orgr_"


class GrantError(Exception):
    """An OAuth error answer: `error` is the RFC 6749/8628 code."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


@dataclass(frozen=True, slots=True)
class Issued:
    access_token: str
    refresh_token: str
    expires_in: int

    def body(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "token_type": "Bearer", "expires_in": self.expires_in,
                "refresh_token": self.refresh_token}


def looks_like_gateway_token(credential: str) -> bool:
    return credential.startswith("eyJ") and credential.count(".") == 2


def derive(secret: bytes, label: str) -> bytes:
    return hmac.new(secret, b"orgate-sso|" + label.encode(), hashlib.sha256).digest()


class Tokens:
    def __init__(self, settings: SsoSettings, store: SsoStore, secret: bytes) -> None:
        self.s = settings
        self.store = store
        self._sign_key = OctKey.import_key(derive(secret, "access-jwt"))
        self._fernet = Fernet(base64.urlsafe_b64encode(derive(secret, "seal")))

    def seal(self, value: str | None) -> str | None:
        return self._fernet.encrypt(value.encode()).decode() if value else None

    def unseal(self, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return self._fernet.decrypt(value.encode()).decode()
        except InvalidToken:  # the server secret changed: the IdP token is unusable, sign in again
            return None

    async def open_family(self, user: dict[str, Any], sealed_idp_refresh: str | None) -> str:
        family = uuid.uuid4().hex
        await self.store.add_family(family, user["id"], sealed_idp_refresh)
        return family

    async def issue(self, family: str, user: dict[str, Any], issuer: str) -> Issued:
        now = now_ms()
        ttl = self.s.access_ttl_seconds
        claims = {"iss": issuer, "sub": user["subject"], "email": user.get("email"), "name": user.get("name"),
                  "groups": _groups(user), "team": user["team"], "iat": now // 1000, "exp": now // 1000 + ttl,
                  "jti": secrets.token_urlsafe(16)}
        access = jwt.encode({"alg": "HS256", "typ": "JWT"}, {k: v for k, v in claims.items() if v is not None},
                            self._sign_key)
        refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
        common = {"family_id": family, "sso_user_id": user["id"], "key_id": user["key_id"]}
        await self.store.add_tokens([
            {"hash": hash_key(access), "kind": "access", "expires_ms": now + ttl * 1000, **common},
            {"hash": hash_key(refresh), "kind": "refresh", "expires_ms": now + self.s.refresh_ttl_seconds * 1000,
             **common},
        ])
        # A replay in another request may have revoked the family between our spend and this insert; read
        # after our commit, so either we see its revocation here or its revoking UPDATE covered our rows.
        fam = await self.store.family(family)
        if fam is None or fam["revoked"]:
            await self.store.revoke_family(family)
            raise GrantError("invalid_grant", "This sign-in was revoked; run /login again.")
        return Issued(access, refresh, ttl)

    async def refresh_row(self, refresh_token: str) -> dict[str, Any]:
        """The live refresh token's row, not yet spent; GrantError(invalid_grant) for anything else."""
        row = await self.store.token(hash_key(refresh_token))
        if row is None or row["kind"] != "refresh":
            raise GrantError("invalid_grant", "Unknown refresh token.")
        if row["revoked"]:
            raise GrantError("invalid_grant", "This sign-in was revoked; run /login again.")
        if row["expires_ms"] <= now_ms():
            raise GrantError("invalid_grant", "The refresh token expired; run /login again.")
        if row["used_ms"] is not None:
            await self._reused(row)
        return row

    async def spend(self, row: dict[str, Any]) -> None:
        """Marks the refresh token used; a second spend (a replay, or a race lost) revokes the family."""
        if not await self.store.spend_refresh(row["hash"]):
            await self._reused(row)

    async def _reused(self, row: dict[str, Any]) -> None:
        # A rotated refresh token came back: someone holds a copy. End the sign-in for everyone holding it.
        await self.store.revoke_family(row["family_id"])
        raise GrantError("invalid_grant", "Refresh token reuse detected; this sign-in is revoked. Run /login.")

    async def revoke(self, token: str) -> None:
        """RFC 7009: unknown tokens are fine; a known one ends its whole sign-in (logout)."""
        row = await self.store.token(hash_key(token))
        if row is not None:
            await self.store.revoke_family(row["family_id"])


def _groups(user: dict[str, Any]) -> list[str] | None:
    raw = user.get("groups")
    if isinstance(raw, list | tuple):
        return list(raw)
    return orjson.loads(raw) if raw else None
