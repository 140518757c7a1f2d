"""Sign-in through the organization's IdP, assembled: the parts the server's SSO routes call."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from orgate.governance.keys import now_ms
from orgate.sso import managed, telemetry
from orgate.sso.device import DeviceFlow
from orgate.sso.directory import Directory
from orgate.sso.oidc import IdpUnavailable, OidcClient, SignInRefused
from orgate.sso.policy import NotAllowed, admit
from orgate.sso.settings import SsoSettings
from orgate.sso.store import SsoStore
from orgate.sso.tokens import GrantError, Issued, Tokens
from orgate.store.keys_repo import KeysRepo

DAY_MS = 86_400_000


class SsoService:
    def __init__(self, settings: SsoSettings, engine: AsyncEngine, keys: KeysRepo, secret: bytes,
                 key_prefix: str) -> None:
        self.s = settings
        self.store = SsoStore(engine)
        self.oidc = OidcClient(settings)
        self.directory = Directory(settings, self.store, keys, key_prefix)
        self.tokens = Tokens(settings, self.store, secret)
        self.device = DeviceFlow(settings, self.store, self.oidc, self.directory, self.tokens)
        self._swept = 0.0

    async def aclose(self) -> None:
        await self.oidc.aclose()

    async def sweep_now_and_then(self) -> None:
        """Expired logins, grants and tokens go away; at most once a minute, from whichever request."""
        if time.monotonic() - self._swept > 60:
            self._swept = time.monotonic()
            await self.store.sweep()

    async def refresh(self, refresh_token: str, issuer: str) -> Issued:
        """Rotation; the person is checked again (status here, claims and groups at the IdP when it gave a
        refresh token), so removal at the IdP or in orgate ends the sign-in at the next refresh."""
        row = await self.tokens.refresh_row(refresh_token)
        user = await self.store.user(row["sso_user_id"])
        if user is None or not await self.directory.active(user):
            await self.store.revoke_family(row["family_id"])
            raise GrantError("invalid_grant", "Your account on this gateway is disabled.")
        family = await self.store.family(row["family_id"])
        idp_refresh = self.tokens.unseal(family["idp_refresh"] if family else None)
        if idp_refresh:
            user = await self._recheck(row["family_id"], idp_refresh)
        await self.tokens.spend(row)
        return await self.tokens.issue(row["family_id"], user, issuer)

    async def _recheck(self, family_id: str, idp_refresh: str) -> dict[str, Any]:
        try:
            who = await self.oidc.refresh(idp_refresh)
            user = await self.directory.sign_in(who, admit(self.s, who).team)
        except (SignInRefused, NotAllowed) as e:
            await self.store.revoke_family(family_id)
            raise GrantError("invalid_grant", str(e)) from None
        except (IdpUnavailable, OSError) as e:
            raise GrantError("temporarily_unavailable", str(e), 503) from None
        await self.store.set_family_idp_refresh(family_id, self.tokens.seal(who.idp_refresh_token))
        return user

    async def managed_for(self, user: dict[str, Any]) -> dict[str, Any] | None:
        scopes = await self.store.managed([managed.GLOBAL, user["team"]])
        return managed.envelope(scopes, user["team"])

    async def count(self, user: dict[str, Any], metric: str) -> None:
        """A gateway-side event in the person's daily summary (e.g. a managed-settings fetch)."""
        await self.store.add_telemetry(now_ms() // DAY_MS * DAY_MS, user["id"], user["team"], {metric: 1.0})

    async def record_telemetry(self, user: dict[str, Any], signal: str, body: bytes, ctype: str) -> None:
        try:
            values = telemetry.summarize(signal, telemetry.decode(signal, body, ctype))
        except Exception:  # noqa: BLE001 -- any garbage from a client is counted, never raised
            values = {"undecodable": 1.0}
        values[f"exports:{signal}"] = values.get(f"exports:{signal}", 0.0) + 1
        await self.store.add_telemetry(now_ms() // DAY_MS * DAY_MS, user["id"], user["team"], values)
