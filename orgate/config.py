"""Settings: one YAML file, `${ENV}` secret references, `ORGATE_A__B=value` overrides, typed by msgspec.

Load order (later wins): the shipped catalog (orgate/catalog.yaml: models, aliases, prices as data), the
operator's YAML file (`--config`, `$ORGATE_CONFIG`, or ./orgate.yaml when present), then environment
variables `ORGATE_<SECTION>__<FIELD>` (double underscore descends one level, e.g.
`ORGATE_SERVER__PORT=9000`, `ORGATE_PROVIDERS__ANTHROPIC__BASE_URL=http://proxy`), typed by the field they set
(config_env.py). Strings of the form `${NAME}` or `${NAME:-default}` in the files are replaced by environment
variables so that secrets never live in the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import msgspec
import yaml

from orgate.config_env import as_tree, env_overrides
from orgate.sso.settings import SsoSettings

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """Config that cannot run; the message lists every problem found, one per line."""


class LongPromptPrice(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    above_prompt_tokens: int
    input: float | str
    output: float | str
    cache_write_5m: float | str | None = None
    cache_write_1h: float | str | None = None
    cache_read: float | str | None = None


class Price(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """USD per million tokens, as decimal strings or numbers; converted to exact micro-USD by pricing."""

    input: float | str
    output: float | str
    cache_write_5m: float | str | None = None
    cache_write_1h: float | str | None = None
    cache_read: float | str | None = None
    # A higher tier for long prompts (Haiku 5.5 above 100k tokens; the 1M-context beta above 200k): when a
    # request's prompt (input + cache reads + cache writes) exceeds `above_prompt_tokens`, every token of
    # it, output included, is billed at these rates.
    long_prompt: LongPromptPrice | None = None


class Deployment(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    provider: str
    model: str  # the upstream's id for this model
    weight: float = 1.0
    rpm: int | None = None


class ModelEntry(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    deployments: list[Deployment] = []
    upstream: str | None = None  # shorthand for one deployment on the default provider
    price: Price | None = None
    display_name: str | None = None
    created_at: str = "2025-01-01T00:00:00Z"
    context_window: int | None = None
    max_output_tokens: int | None = None
    default_max_tokens: int = 4096  # OpenAI surfaces send no max_tokens; Anthropic requires one
    routing: str = "ordered"  # ordered | weighted
    # Models that refuse temperature and top_p together (Claude 4.5+): checked before any upstream call.
    exclusive_temperature_top_p: bool = True
    rejects_sampling_params: bool = False
    thinking: list[str] = msgspec.field(default_factory=lambda: ["enabled"])  # thinking types the model accepts: enabled, adaptive
    aliases: list[str] = []
    # The model's id on each provider type, used for `aws/anthropic/<model>` and `google/anthropic/<model>`.
    provider_ids: dict[str, str] = {}
    # The Bedrock API that serves this model (`messages` | `invoke`); unset: decided by its id.
    bedrock_api: str | None = None
    hidden: bool = False
    # Cache breakpoints added to requests translated from the OpenAI routes (dialects/anthropic/caching.py).
    auto_cache: bool = True


class Provider(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    type: str  # anthropic | bedrock | vertex | openai | openai_compatible
    base_url: str | None = None
    api_key: str | None = None
    # bedrock
    region: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    bearer_token: str | None = None
    # Which Bedrock API serves a model: `invoke` (InvokeModel, Claude Opus 4.6 and earlier), `messages` (the
    # Anthropic Messages API at /anthropic/v1/messages, Opus 4.7 and later), or `auto`: by the model's catalog
    # `bedrock_api`, else by its id (upstreams/bedrock_messages.py).
    api: str = "auto"
    # Where the Messages API is called: `runtime` (bedrock-runtime, SigV4 service `bedrock`) or `mantle`
    # (bedrock-mantle, SigV4 service `bedrock-mantle`). Unset: `mantle` when base_url is a bedrock-mantle host.
    messages_endpoint: str | None = None
    mantle_base_url: str | None = None  # default https://bedrock-mantle.{region}.api.aws
    # vertex
    project_id: str | None = None
    credentials_file: str | None = None
    token_url: str | None = None
    timeouts: dict[str, float] = {}
    # bedrock / vertex: betas to accept beyond, or to withhold from, orgate's table (upstreams/betas.py)
    betas_add: list[str] = []
    betas_remove: list[str] = []


class ServerSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 32 * 1024 * 1024 + 1024 * 1024  # Anthropic's 32 MB request limit plus headroom
    shutdown_grace_seconds: float = 30.0
    log_prompts: bool = False
    log_level: str = "info"
    # What one slow or hostile client may hold while a request is read (server/guard.py).
    max_header_bytes: int = 64 * 1024
    max_headers: int = 200
    header_timeout_seconds: float = 10.0
    body_min_bytes_per_second: int = 1024
    body_window_seconds: float = 10.0
    max_connections: int = 4096  # lowered at start to fit the process's file limit
    # Request bodies held at once (read, not yet upstream); past it a new request waits unread in the
    # kernel until bodies are let go (server/intake.py). 0: no bound.
    max_buffered_body_bytes: int = 12 * 1024 * 1024
    # A stream with no byte to the client for this long gets the dialect's keep-alive (0: never).
    keepalive_seconds: float = 10.0
    workers: int | str = 1  # processes serving the port; "auto" = the cores this host gives orgate
    # The cyclic garbage collector after start (server/app.py, `gc_tuned`): what start loaded is frozen out of
    # its scans and it runs after 10,000 net new objects, not 700 (it was ~11 % of a request's CPU). 0: Python's.
    gc_threshold: int = 10_000


class KeySettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    prefix: str = "sk-ant-"
    cache_ttl_seconds: float = 30.0


class AdminSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    password: str | None = None  # console login
    token: str | None = None  # bearer credential for /admin/api


class RoutingSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    max_attempts: int = 3
    backoff_base_seconds: float = 0.25
    backoff_max_seconds: float = 8.0
    connect_timeout: float = 10.0
    first_byte_timeout: float = 600.0
    idle_timeout: float = 300.0
    circuit_failures: int = 5
    circuit_cooldown_seconds: float = 30.0


class BudgetSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # A reservation whose instance stops renewing it (crash, SIGKILL) is released this long after its last
    # renewal (renewed every third of it) by any instance's sweeper (store/writer.py).
    reservation_ttl_seconds: float = 30.0
    sweep_interval_seconds: float = 5.0
    # An instance gives an idle budget lease back after this long (see governance/leases.py).
    lease_hold_seconds: float = 2.0
    # Near the limit (governance/admission.py): bound with the provider's token count before refusing, and
    # wait this long for in-flight requests to settle when only their reservations stand in the way.
    count_tokens_near_limit: bool = True
    settle_wait_seconds: float = 10.0


class CacheSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # Prompt-cache breakpoints on the OpenAI routes toward Claude; off for the keys named here.
    auto: bool = True
    off_for_keys: list[str] = []


class LedgerSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    enabled: bool = True
    batch_size: int = 500
    flush_interval_seconds: float = 0.5


class ResponseStoreSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Keep /v1/responses answers for `previous_response_id` (server/response_store.py). Off: orgate is
    stateless and `previous_response_id` is refused."""

    enabled: bool = False
    retention_hours: float = 168.0  # a stored response is readable this long, then deleted


class UnknownModelSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What happens to a model id the catalog does not list but whose family it knows (routing/families.py)."""

    policy: str = "forward"  # forward | newest | refuse
    provider: str = "anthropic"  # where `forward` sends the id; must be an anthropic-type provider
    families: list[str] = msgspec.field(default_factory=lambda: ["opus", "sonnet", "haiku"])


class MetricsSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    enabled: bool = True
    token: str | None = None  # when set, GET /metrics needs `Authorization: Bearer <token>`
    port: int | None = None  # when set, /metrics is served on this port (and not on the main one)
    host: str | None = None  # for the separate port; default server.host
    per_key_label: bool = False  # a `key` label (the key's name) on request and spend series: unbounded


class Webhook(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    url: str
    secret: str | None = None  # signs the body (HMAC-SHA256); strongly advised
    events: list[str] = []  # event types to send; empty: every type


class AlertSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    webhooks: list[Webhook] = []
    budget_thresholds: list[int] = msgspec.field(default_factory=lambda: [50, 80, 100])  # % of the period budget
    max_attempts: int = 8
    retry_base_seconds: float = 2.0  # delivery retries back off exponentially from here
    retry_max_seconds: float = 600.0
    timeout_seconds: float = 10.0
    poll_seconds: float = 1.0  # how often pending deliveries are looked for


class Settings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    data_dir: str = "./data"
    database_url: str | None = None  # default: sqlite in data_dir
    redis_url: str | None = None
    secret: str | None = None  # for signed envelopes and sessions; generated into data_dir when missing
    default_provider: str = "anthropic"
    server: ServerSettings = ServerSettings()
    keys: KeySettings = KeySettings()
    admin: AdminSettings = AdminSettings()
    routing: RoutingSettings = RoutingSettings()
    budgets: BudgetSettings = BudgetSettings()
    ledger: LedgerSettings = LedgerSettings()
    caching: CacheSettings = CacheSettings()
    sso: SsoSettings = SsoSettings()
    metrics: MetricsSettings = MetricsSettings()
    alerts: AlertSettings = AlertSettings()
    providers: dict[str, Provider] = {}
    models: dict[str, ModelEntry] = {}
    unknown_models: UnknownModelSettings = UnknownModelSettings()
    response_store: ResponseStoreSettings = ResponseStoreSettings()

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.data_dir).resolve() / 'orgate.db'}"


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _substitute(value: Any, env: dict[str, str], missing: list[str], path: str) -> Any:
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            missing.append(f"{path}: environment variable {name} is not set")
            return ""

        return _REF.sub(repl, value)
    if isinstance(value, dict):
        return {k: _substitute(v, env, missing, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env, missing, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def config_path(explicit: str | None, env: dict[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if env.get("ORGATE_CONFIG"):
        return Path(env["ORGATE_CONFIG"])
    default = Path("orgate.yaml")
    return default if default.exists() else None


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read and validate settings; raises ConfigError naming every problem."""
    env = dict(os.environ if env is None else env)
    raw = _read_yaml(CATALOG_PATH)
    file = config_path(str(path) if path else None, env)
    if file is not None:
        if not file.exists():
            raise ConfigError(f"config file {file} does not exist")
        raw = _deep_merge(raw, _read_yaml(file))
    missing: list[str] = []
    raw = _substitute(raw, env, missing, "$")  # in the files only: an override's value is taken verbatim
    overrides, bad, _ = env_overrides(env, Settings)
    if bad:
        raise ConfigError("\n".join(bad))
    raw = _deep_merge(raw, as_tree(overrides))
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as e:
        raise ConfigError(f"invalid config: {e}") from None
    from orgate.config_check import validate  # the semantic checks live apart (they import pricing)

    problems = missing + validate(settings)
    if problems:
        raise ConfigError("\n".join(problems))
    return _blank_credentials_off(settings)


def _blank_credentials_off(s: Settings) -> Settings:
    """An admin credential that resolves to blank (`ORGATE_ADMIN__TOKEN=`, an empty `${VAR}`) is no credential.

    Left as "", it would equal the empty token parsed from any malformed `Authorization` header, or an empty
    login password; as None it turns that way in off, which `config check` reports.
    """
    a = s.admin
    blank = {k: None for k in ("password", "token") if getattr(a, k) is not None and not getattr(a, k).strip()}
    return msgspec.structs.replace(s, admin=msgspec.structs.replace(a, **blank)) if blank else s
