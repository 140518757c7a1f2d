"""The OIDC relying party: discovery, authorization URL (PKCE S256, state, nonce), code exchange and ID token
verification against the provider's JWKS. Libraries do the protocol and the cryptography (authlib's OAuth 2
client over httpx, joserfc for JWS/JWK); this module only wires them to orgate's settings.

Key rotation: the JWKS is cached; an ID token whose `kid` is not in the cached set triggers one refetch (at
most one per REFETCH_S, so tokens under unknown keys cannot make orgate hammer the IdP).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from orgate.sso.settings import SsoSettings

DISCOVERY_TTL_S = 3600.0
REFETCH_S = 10.0
LEEWAY_S = 60
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


class SignInRefused(Exception):
    """The IdP leg did not prove an identity (bad state, bad token, IdP error). The message is safe to show."""


class IdpUnavailable(Exception):
    """The IdP could not be reached or answered garbage: a reason to try later, not to sign anyone out."""


@dataclass(frozen=True, slots=True)
class Identity:
    issuer: str
    subject: str
    email: str | None
    email_verified: bool | None
    name: str | None
    groups: tuple[str, ...]
    idp_refresh_token: str | None


class OidcClient:
    def __init__(self, settings: SsoSettings) -> None:
        self.s = settings
        self._meta: dict[str, Any] | None = None
        self._meta_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0
        self.http = httpx.AsyncClient(timeout=10.0, follow_redirects=False)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def metadata(self) -> dict[str, Any]:
        if self._meta is None or time.monotonic() - self._meta_at > DISCOVERY_TTL_S:
            url = self.s.issuer.rstrip("/") + "/.well-known/openid-configuration"  # type: ignore[union-attr]
            r = await self.http.get(url)
            r.raise_for_status()
            meta = r.json()
            if meta.get("issuer") != self.s.issuer:
                raise SignInRefused("The identity provider's discovery document names another issuer.")
            self._meta, self._meta_at = meta, time.monotonic()
        return self._meta

    async def _key_set(self, refresh: bool = False) -> KeySet:
        stale = time.monotonic() - self._keys_at > DISCOVERY_TTL_S
        if self._keys is None or stale or (refresh and time.monotonic() - self._keys_at > REFETCH_S):
            r = await self.http.get((await self.metadata())["jwks_uri"])
            r.raise_for_status()
            self._keys, self._keys_at = KeySet.import_key_set(r.json()), time.monotonic()
        return self._keys

    def _client(self, redirect_uri: str, token_endpoint: str | None = None) -> AsyncOAuth2Client:
        kw: dict[str, Any] = {"scope": " ".join(self.s.scopes), "redirect_uri": redirect_uri,
                              "code_challenge_method": "S256"}
        if self.s.private_key_file:
            with open(self.s.private_key_file, "rb") as f:
                secret = f.read().decode()
            client = AsyncOAuth2Client(self.s.client_id, secret, token_endpoint_auth_method="private_key_jwt", **kw)
            client.register_client_auth_method(PrivateKeyJWT(token_endpoint))
        else:
            client = AsyncOAuth2Client(self.s.client_id, self.s.client_secret,
                                       token_endpoint_auth_method="client_secret_basic", **kw)
        client.timeout = 10.0
        return client

    async def authorization_url(self, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        meta = await self.metadata()
        client = self._client(redirect_uri)
        try:
            url, _ = client.create_authorization_url(meta["authorization_endpoint"], state=state, nonce=nonce,
                                                     code_verifier=verifier, response_mode="query")
        finally:
            await client.aclose()
        return url

    async def exchange(self, redirect_uri: str, code: str, verifier: str, nonce: str) -> Identity:
        """Trade the authorization code (with the PKCE verifier) for tokens and verify the ID token."""
        meta = await self.metadata()
        client = self._client(redirect_uri, meta["token_endpoint"])
        try:
            token = await client.fetch_token(meta["token_endpoint"], code=code, code_verifier=verifier,
                                             grant_type="authorization_code")
        except (OAuthError, httpx.HTTPError) as e:
            raise SignInRefused(f"The identity provider refused the code exchange ({_reason(e)}).") from None
        finally:
            await client.aclose()
        return await self._identity(token, nonce)

    async def refresh(self, idp_refresh_token: str) -> Identity:
        """Ask the IdP again (group changes and removals bite here); raises SignInRefused when it says no."""
        meta = await self.metadata()
        client = self._client("", meta["token_endpoint"])
        try:
            token = await client.refresh_token(meta["token_endpoint"], refresh_token=idp_refresh_token)
        except OAuthError as e:
            raise SignInRefused(f"The identity provider refused the refresh ({_reason(e)}).") from None
        except httpx.HTTPError as e:
            raise IdpUnavailable(f"The identity provider is unreachable ({_reason(e)}).") from None
        finally:
            await client.aclose()
        if not token.get("id_token"):
            raise SignInRefused("The identity provider's refresh answer carries no ID token.")
        return await self._identity(token, None, idp_refresh_token)

    async def _identity(self, token: dict[str, Any], nonce: str | None, old_refresh: str | None = None) -> Identity:
        claims = await self.verify_id_token(str(token.get("id_token") or ""), nonce)
        return Identity(
            issuer=claims["iss"], subject=str(claims["sub"]),
            email=_str(claims.get(self.s.email_claim)), email_verified=_flag(claims.get("email_verified")),
            name=_str(claims.get(self.s.name_claim)), groups=_groups(claims.get(self.s.groups_claim)),
            idp_refresh_token=token.get("refresh_token") or old_refresh,
        )

    async def verify_id_token(self, id_token: str, nonce: str | None) -> dict[str, Any]:
        if not id_token:
            raise SignInRefused("The identity provider returned no ID token.")
        try:
            decoded = await self._decode(id_token)
            rules: dict[str, Any] = {
                "iss": {"essential": True, "value": self.s.issuer},
                "aud": {"essential": True, "value": self.s.client_id},
                "sub": {"essential": True}, "exp": {"essential": True}, "iat": {"essential": True},
            }
            if nonce is not None:
                rules["nonce"] = {"essential": True, "value": nonce}
            jwt.JWTClaimsRegistry(leeway=LEEWAY_S, **rules).validate(decoded.claims)
        except JoseError as e:
            raise SignInRefused(f"The ID token is not valid ({e.error}).") from None
        return decoded.claims

    async def _decode(self, id_token: str) -> jwt.Token:
        keys = await self._key_set()
        try:
            return jwt.decode(id_token, keys, algorithms=ALGORITHMS)
        except (JoseError, ValueError) as first:
            # An unknown kid may mean the IdP rotated its keys: fetch them once more and retry.
            refreshed = await self._key_set(refresh=True)
            if refreshed is keys:
                raise _as_jose(first) from None
            try:
                return jwt.decode(id_token, refreshed, algorithms=ALGORITHMS)
            except ValueError as e:
                raise _as_jose(e) from None


def _as_jose(e: Exception) -> JoseError:
    return e if isinstance(e, JoseError) else JoseError(str(e))


def _reason(e: Exception) -> str:
    if isinstance(e, OAuthError):
        return e.error or "error"
    return type(e).__name__


def _flag(v: Any) -> bool | None:
    """email_verified as a boolean; some IdPs send the string "true"/"false"."""
    if isinstance(v, str):
        return v.strip().lower() == "true"
    return v if isinstance(v, bool) else None


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _groups(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        return tuple(g.strip() for g in v.split(",") if g.strip())
    if isinstance(v, list):
        return tuple(str(g) for g in v if isinstance(g, str | int))
    return ()
