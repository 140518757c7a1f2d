"""Who may sign in and where they land: the claim-mapping rules, with no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from orgate.sso.oidc import Identity
from orgate.sso.settings import SsoSettings


class NotAllowed(Exception):
    """The IdP proved who the person is, and orgate's rules refuse them. The message is safe to show."""


@dataclass(frozen=True, slots=True)
class Admission:
    team: str
    is_admin: bool


def admit(s: SsoSettings, who: Identity) -> Admission:
    """The team a person lands in, or NotAllowed naming the rule that refused them."""
    if s.require_verified_email and who.email_verified is False:
        raise NotAllowed("Your email address is not verified at the identity provider.")
    if s.allowed_domains:
        domain = (who.email or "").rpartition("@")[2].lower()
        if not who.email or domain not in {d.lower().lstrip("@") for d in s.allowed_domains}:
            raise NotAllowed("Your email domain is not allowed to use this gateway.")
    groups = set(who.groups)
    if s.allowed_groups and groups.isdisjoint(s.allowed_groups):
        raise NotAllowed("You are not in a group allowed to use this gateway.")
    team = next((t for g, t in s.team_groups.items() if g in groups), s.default_team)
    return Admission(team=team, is_admin=bool(s.admin_groups) and not groups.isdisjoint(s.admin_groups))


def admin_allowed(s: SsoSettings, who: Identity) -> bool:
    """Console sign-in: the ordinary rules, then membership of an admin group."""
    try:
        return admit(s, who).is_admin
    except NotAllowed:
        return False
