"""The `sso:` section of the config: the organization's OIDC provider and what orgate does with its people.

Off unless `sso.issuer` and `sso.client_id` are set. Everything here is policy; the OIDC and JOSE mechanics
live in orgate/sso/oidc.py (authlib + joserfc).
"""

from __future__ import annotations

import msgspec


class SsoSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    issuer: str | None = None  # the IdP's issuer URL; its /.well-known/openid-configuration is read
    client_id: str | None = None
    client_secret: str | None = None  # client_secret_basic; or private_key_file for private_key_jwt
    private_key_file: str | None = None  # PEM; the client authenticates with a signed JWT (RFC 7523)
    # The gateway's own public base URL; the redirect URI is exactly `<public_url>/oauth/callback` and must
    # be registered at the IdP as such. Unset: taken from the request (fine on loopback, not behind proxies).
    public_url: str | None = None
    scopes: list[str] = msgspec.field(default_factory=lambda: ["openid", "profile", "email", "offline_access"])
    # Claim mapping.
    email_claim: str = "email"
    name_claim: str = "name"
    groups_claim: str = "groups"
    require_verified_email: bool = True  # an explicit email_verified: false is refused
    # Who may sign in: when a list is non-empty, the person must match it (domain of the email / a group).
    allowed_domains: list[str] = []
    allowed_groups: list[str] = []
    admin_groups: list[str] = []  # members may sign in to the admin console through the IdP
    # A person orgate does not know yet: "create" (in default_team, with the default budget) or "refuse".
    unknown_users: str = "create"
    default_team: str = "default"
    team_groups: dict[str, str] = {}  # IdP group -> orgate team; the first matching group wins
    default_budget_usd: float | str | None = None
    default_budget_period: str = "monthly"
    # Token lifetimes. Claude Code refreshes when under 5 minutes remain, so access tokens must live longer.
    access_ttl_seconds: int = 3600
    refresh_ttl_seconds: int = 14 * 86400
    device_code_ttl_seconds: int = 600
    poll_interval_seconds: int = 5
    # Per client address, per 10 minutes (as Anthropic's gateway): device codes asked, user codes entered.
    device_codes_per_address: int = 30
    code_entries_per_address: int = 10
    # Client telemetry (OTLP/HTTP) is summarized per user and team; optionally also relayed verbatim here.
    telemetry_forward_url: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.issuer and self.client_id)


def validate(s: SsoSettings) -> list[str]:
    if not s.enabled:
        return []
    problems = []
    if not (s.client_secret or s.private_key_file):
        problems.append("sso.client_secret: required (or sso.private_key_file for private_key_jwt)")
    if s.unknown_users not in ("create", "refuse"):
        problems.append("sso.unknown_users: must be 'create' or 'refuse'")
    if "openid" not in s.scopes:
        problems.append("sso.scopes: must include 'openid'")
    if s.access_ttl_seconds < 600:
        problems.append("sso.access_ttl_seconds: at least 600 (Claude Code refreshes 5 minutes before expiry)")
    if s.public_url and not s.public_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        problems.append("sso.public_url: must be https:// (http only on loopback)")
    return problems
