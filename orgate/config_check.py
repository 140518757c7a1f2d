"""Checks of a loaded configuration that its types cannot express (`validate`, run by `load_settings`), and
what a valid configuration leaves switched off (`notices`, printed by `orgate config check`)."""

from __future__ import annotations

from orgate.config import Deployment, Settings
from orgate.sso.settings import validate as validate_sso


def notices(s: Settings) -> list[str]:
    """What a valid config leaves switched off or unsafe, for `config check`."""
    out = [f"providers.{name}.api_key is empty (set ANTHROPIC_API_KEY)"
           for name, p in s.providers.items() if p.type == "anthropic" and not p.api_key]
    if s.admin.token is None:
        out.append("admin.token is unset or empty: bearer access to /admin/api is disabled")
    if s.admin.password is None:
        out.append("admin.password is unset or empty: console login with a password is disabled")
    return out


def validate(s: Settings) -> list[str]:
    """Semantic checks msgspec's types cannot express. Prices are checked here so no model is ever free."""
    from orgate.governance.pricing import parse_price  # local: pricing depends on config types

    problems: list[str] = []
    known_types = {"anthropic", "bedrock", "vertex", "openai", "openai_compatible"}
    for name, p in s.providers.items():
        if p.type not in known_types:
            problems.append(f"providers.{name}.type: '{p.type}' is not one of {sorted(known_types)}")
        if p.type == "openai_compatible" and not p.base_url:
            problems.append(f"providers.{name}.base_url: required for an openai_compatible provider")
        if p.api not in ("auto", "messages", "invoke"):
            problems.append(f"providers.{name}.api: must be 'auto', 'messages' or 'invoke'")
        if p.messages_endpoint not in (None, "runtime", "mantle"):
            problems.append(f"providers.{name}.messages_endpoint: must be 'runtime' or 'mantle'")
    for mid, m in s.models.items():
        if m.price is None:
            problems.append(f"models.{mid}.price: missing (a model without a price would be billed as free)")
        else:
            try:
                parse_price(m.price)
            except ValueError as e:
                problems.append(f"models.{mid}.price: {e}")
        if m.routing not in ("ordered", "weighted"):
            problems.append(f"models.{mid}.routing: must be 'ordered' or 'weighted'")
        if m.bedrock_api not in (None, "messages", "invoke"):
            problems.append(f"models.{mid}.bedrock_api: must be 'messages' or 'invoke'")
        deps = m.deployments or ([Deployment(s.default_provider, m.upstream)] if m.upstream else [])
        if not deps:
            problems.append(f"models.{mid}: needs 'upstream' or 'deployments'")
        for i, d in enumerate(deps):
            if d.provider not in s.providers:
                problems.append(f"models.{mid}.deployments[{i}].provider: '{d.provider}' is not configured")
    if s.response_store.retention_hours <= 0:
        problems.append("response_store.retention_hours: must be positive")
    if s.unknown_models.policy not in ("forward", "newest", "refuse"):
        problems.append("unknown_models.policy: must be 'forward', 'newest' or 'refuse'")
    fwd = s.providers.get(s.unknown_models.provider)
    if s.unknown_models.policy == "forward" and fwd is not None and fwd.type != "anthropic":
        problems.append(f"unknown_models.provider: '{s.unknown_models.provider}' is not an anthropic provider")
    if s.server.port <= 0 or s.server.port > 65535:
        problems.append("server.port: must be 1-65535")
    workers = str(s.server.workers).strip().lower()
    if workers != "auto" and not (workers.isdigit() and int(workers) >= 1):
        problems.append("server.workers: must be a positive integer or 'auto'")
    if s.server.max_body_bytes < 1024:
        problems.append("server.max_body_bytes: must be at least 1024")
    if not s.keys.prefix or len(s.keys.prefix) > 16:
        problems.append("keys.prefix: must be 1-16 characters")
    if s.database_url and not s.database_url.startswith(("sqlite", "postgresql", "postgres")):
        problems.append("database_url: must be sqlite:///path or postgresql://...")
    return problems + validate_sso(s.sso) + _validate_observability(s)


def _validate_observability(s: Settings) -> list[str]:
    problems: list[str] = []
    if s.metrics.port is not None and not 0 < s.metrics.port < 65536:
        problems.append("metrics.port: must be 1-65535")
    if any(not 0 < t <= 1000 for t in s.alerts.budget_thresholds):
        problems.append("alerts.budget_thresholds: percentages between 1 and 1000")
    for i, w in enumerate(s.alerts.webhooks):
        if not w.url.startswith(("http://", "https://")):
            problems.append(f"alerts.webhooks[{i}].url: must be an http:// or https:// URL")
    if s.alerts.max_attempts < 1:
        problems.append("alerts.max_attempts: must be at least 1")
    return problems
