"""People who sign in, bound to orgate's principals.

The narrow interface sign-in needs from the user model: "find or create the person for (issuer, subject,
email, groups)" and "the key a token runs as". Each person owns one internal orgate key whose secret is
never shown to anyone: gateway tokens resolve to it, so budgets, limits, routing and the ledger treat a
signed-in developer exactly like a key, and every ledger row carries that key.
"""

from __future__ import annotations

from typing import Any

from orgate.governance.keys import now_ms
from orgate.governance.pricing import usd_to_micros
from orgate.sso.oidc import Identity
from orgate.sso.policy import NotAllowed
from orgate.sso.settings import SsoSettings
from orgate.sso.store import SsoStore
from orgate.store.keys_repo import KeysRepo


class Directory:
    def __init__(self, settings: SsoSettings, store: SsoStore, keys: KeysRepo, key_prefix: str) -> None:
        self.s = settings
        self.store = store
        self.keys = keys
        self.prefix = key_prefix

    async def sign_in(self, who: Identity, team: str) -> dict[str, Any]:
        """The person's row, created on first sign-in when the policy allows; refreshed from the claims."""
        user = await self.store.user_by_subject(who.issuer, who.subject)
        if user is None:
            if self.s.unknown_users != "create":
                raise NotAllowed("You do not have an account on this gateway; ask an administrator to add you.")
            return await self._create(who, team)
        if user["status"] != "active":
            raise NotAllowed("Your account on this gateway is disabled.")
        await self.store.update_user(user["id"], email=who.email, name=who.name, groups=who.groups, team=team,
                                     last_login_ms=now_ms())
        return {**user, "email": who.email, "name": who.name, "team": team}

    async def _create(self, who: Identity, team: str) -> dict[str, Any]:
        budget = self.s.default_budget_usd
        _, key = await self.keys.create(
            prefix=self.prefix, name=f"sso:{who.email or who.subject}"[:200],
            budget_micros=usd_to_micros(budget) if budget is not None else None,
            budget_period=self.s.default_budget_period if budget is not None else None,
        )
        return await self.store.add_user(issuer=who.issuer, subject=who.subject, email=who.email, name=who.name,
                                         groups=who.groups, team=team, key_id=key["id"])

    async def set_status(self, sso_user_id: int, status: str) -> dict[str, Any] | None:
        """Disabling a person disables their key (refused within the key cache's bound) and revokes tokens."""
        user = await self.store.user(sso_user_id)
        if user is None:
            return None
        await self.store.update_user(sso_user_id, status=status)
        await self.keys.update(user["key_id"], status="active" if status == "active" else "disabled")
        if status != "active":
            await self.store.revoke_user(sso_user_id)
        return await self.store.user(sso_user_id)
