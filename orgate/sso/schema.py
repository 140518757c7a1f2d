"""SQL tables of sign-in through the organization's identity provider (migration 0007_sso).

Secrets are never stored in the clear: device codes, access and refresh tokens are kept as SHA-256 hashes
(256-bit random or signed values, so a fast hash is enough, as for API keys). The IdP's refresh token, which
orgate must present again, is sealed with a key derived from the server secret.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# A person who signed in, keyed by (issuer, subject). `key_id` is their internal orgate key: every request
# with a gateway token runs as that key, through the same budget, limit, routing and ledger path as any key.
sso_users = sa.Table(
    "sso_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("issuer", sa.String(300), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("email", sa.String(320), nullable=True),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("groups", sa.Text, nullable=True),  # JSON list, as of the last sign-in or refresh
    sa.Column("team", sa.String(200), nullable=False),
    sa.Column("key_id", sa.Integer, nullable=False),
    sa.Column("user_id", sa.Integer, nullable=True),  # the people-and-teams user, when that model exists
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),  # active|disabled
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("last_login_ms", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("issuer", "subject", name="uq_sso_users_issuer_subject"),
)

# RFC 8628 device grants: Claude Code polls with the device code; a browser approves the user code.
sso_device_grants = sa.Table(
    "sso_device_grants",
    metadata,
    sa.Column("device_hash", sa.String(64), primary_key=True),
    sa.Column("user_code", sa.String(16), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),  # pending|approved|denied|consumed
    sa.Column("sso_user_id", sa.Integer, nullable=True),
    sa.Column("idp_refresh", sa.Text, nullable=True),  # sealed; moves to the family when the poll succeeds
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
    sa.Column("interval_s", sa.Integer, nullable=False),
    sa.Column("last_poll_ms", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index("ix_sso_device_grants_expires", "expires_ms"),
)

# One browser trip to the IdP: state (hashed, the key), nonce, PKCE verifier, the browser-binding cookie.
sso_logins = sa.Table(
    "sso_logins",
    metadata,
    sa.Column("state_hash", sa.String(64), primary_key=True),
    sa.Column("purpose", sa.String(16), nullable=False),  # device|admin
    sa.Column("user_code", sa.String(16), nullable=True),
    sa.Column("nonce", sa.String(100), nullable=False),
    sa.Column("verifier", sa.String(200), nullable=False),
    sa.Column("browser_hash", sa.String(64), nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
)

# A refresh-token family: one sign-in. Reusing a rotated refresh token revokes the whole family.
sso_families = sa.Table(
    "sso_families",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("sso_user_id", sa.Integer, nullable=False),
    sa.Column("idp_refresh", sa.Text, nullable=True),  # sealed (Fernet) IdP refresh token
    sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

sso_tokens = sa.Table(
    "sso_tokens",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(8), nullable=False),  # access|refresh
    sa.Column("family_id", sa.String(40), nullable=False),
    sa.Column("sso_user_id", sa.Integer, nullable=False),
    sa.Column("key_id", sa.Integer, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
    sa.Column("used_ms", sa.BigInteger, nullable=True),  # a refresh token is spent once
    sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Index("ix_sso_tokens_family", "family_id"),
    sa.Index("ix_sso_tokens_user", "sso_user_id"),
)

# Settings pushed to Claude Code: scope "" is the global default, otherwise a team name.
sso_managed_settings = sa.Table(
    "sso_managed_settings",
    metadata,
    sa.Column("scope", sa.String(200), primary_key=True),
    sa.Column("settings", sa.Text, nullable=False),  # JSON object
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

# Client telemetry summarized per day, user and metric (the team is the user's team at the time).
sso_telemetry = sa.Table(
    "sso_telemetry",
    metadata,
    sa.Column("day_ms", sa.BigInteger, nullable=False),
    sa.Column("sso_user_id", sa.Integer, nullable=False),
    sa.Column("team", sa.String(200), nullable=False),
    sa.Column("metric", sa.String(200), nullable=False),
    sa.Column("value", sa.Float, nullable=False, server_default="0"),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("day_ms", "sso_user_id", "metric"),
)

# Claude Code sessions seen with a gateway token (the x-claude-code-session-id header), flushed from memory
# about once a second: sessions and requests per person without parsing a body or writing per request.
sso_sessions = sa.Table(
    "sso_sessions",
    metadata,
    sa.Column("session_id", sa.String(100), nullable=False),
    sa.Column("sso_user_id", sa.Integer, nullable=False),
    sa.Column("team", sa.String(200), nullable=False),
    sa.Column("first_ms", sa.BigInteger, nullable=False),
    sa.Column("last_ms", sa.BigInteger, nullable=False),
    sa.Column("requests", sa.BigInteger, nullable=False, server_default="0"),
    sa.PrimaryKeyConstraint("session_id", "sso_user_id"),
    sa.Index("ix_sso_sessions_last", "last_ms"),
)

ALL = (sso_users, sso_device_grants, sso_logins, sso_families, sso_tokens, sso_managed_settings, sso_telemetry,
       sso_sessions)
