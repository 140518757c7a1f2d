"""People who sign in, bound to orgate's users and teams.

The narrow interface sign-in needs from the user model: "find or create the person for (issuer, subject,
email, groups)" and "the key a token runs as". A person is an orgate user (matched by external id
`<issuer>#<subject>`, else by email: an admin may create users before they first sign in) in the team their
IdP groups map to. The user owns one internal key charged to that team, whose secret is never shown:
gateway tokens resolve to it, so budgets (key, user, team), limits, routing and the ledger treat a signed-in
developer exactly like a key holder, and every ledger row carries that key, user and team.
"""

from __future__ import annotations

from typing import Any

from orgate.governance.keys import now_ms
from orgate.governance.pricing import usd_to_micros
from orgate.sso.oidc import Identity
from orgate.sso.policy import NotAllowed
from orgate.sso.settings import SsoSettings
from orgate.sso.store import SsoStore
from orgate.store.accounts_repo import AccountsRepo
from orgate.store.keys_repo import KeysRepo


def external_id(who: Identity) -> str:
    return f"{who.issuer}#{who.subject}"[:255]


class Directory:
    def __init__(self, settings: SsoSettings, store: SsoStore, keys: KeysRepo, key_prefix: str) -> None:
        self.s = settings
        self.store = store
        self.keys = keys
        self.accounts = AccountsRepo(keys.engine)
        self.prefix = key_prefix

    async def sign_in(self, who: Identity, team_name: str) -> dict[str, Any]:
        """The person's row, created on first sign-in when the policy allows; refreshed from the claims."""
        person = await self.store.user_by_subject(who.issuer, who.subject)
        user = await self._user(who, person)
        if person is not None and person["status"] != "active" or user["status"] != "active":
            raise NotAllowed("Your account on this gateway is disabled.")
        team = await self._team(team_name)
        await self.accounts.add_member(team["id"], user["id"])
        if person is None:
            _, key = await self.keys.create(prefix=self.prefix, name=f"sso:{who.email or who.subject}"[:200],
                                            user_id=user["id"], team_id=team["id"])
            return await self.store.add_user(issuer=who.issuer, subject=who.subject, email=who.email,
                                             name=who.name, groups=who.groups, team=team_name, key_id=key["id"],
                                             user_id=user["id"])
        if person["team"] != team_name:  # the groups moved the person: their spend now charges the new team
            await self.keys.update(person["key_id"], team_id=team["id"])
        await self.store.update_user(person["id"], email=who.email, name=who.name, groups=who.groups,
                                     team=team_name, user_id=user["id"], last_login_ms=now_ms())
        return {**person, "email": who.email, "name": who.name, "team": team_name, "user_id": user["id"]}

    async def _user(self, who: Identity, person: dict[str, Any] | None) -> dict[str, Any]:
        ext = external_id(who)
        user = await self.accounts.find("user", ext)
        if user is None and who.email:
            user = await self.accounts.find("user", who.email)
            if user is not None and user.get("external_id") not in (None, ext):
                user = None  # that email belongs to another identity: never take it over
            elif user is not None:
                user = await self.accounts.update("user", user["id"], external_id=ext)
        if user is not None:
            return user
        if person is None and self.s.unknown_users != "create":
            raise NotAllowed("You do not have an account on this gateway; ask an administrator to add you.")
        budget = self.s.default_budget_usd
        return await self.accounts.create(
            "user", name=(who.name or who.email or who.subject)[:200], email=who.email, external_id=ext,
            budget_micros=usd_to_micros(budget) if budget is not None else None,
            budget_period=self.s.default_budget_period if budget is not None else None)

    async def _team(self, name: str) -> dict[str, Any]:
        team = await self.accounts.find("team", name)
        return team if team is not None else await self.accounts.create("team", name=name)

    async def active(self, person: dict[str, Any]) -> bool:
        """Still allowed in orgate: the sign-in record and the orgate user are both active."""
        if person["status"] != "active":
            return False
        user = await self.accounts.get("user", person["user_id"]) if person.get("user_id") else None
        return user is None or user["status"] == "active"

    async def set_status(self, sso_user_id: int, status: str) -> dict[str, Any] | None:
        """Disabling a person disables their orgate user (every key of theirs is refused within the key
        cache's bound, about a second) and revokes their gateway tokens."""
        person = await self.store.user(sso_user_id)
        if person is None:
            return None
        await self.store.update_user(sso_user_id, status=status)
        if person.get("user_id"):
            await self.accounts.update("user", person["user_id"], status=status)
        else:
            await self.keys.update(person["key_id"], status="active" if status == "active" else "disabled")
        if status != "active":
            await self.store.revoke_user(sso_user_id)
        return await self.store.user(sso_user_id)
