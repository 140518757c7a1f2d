"""What a gateway with the default config loads at start: only what every deployment uses.

Each module a deployment may not use (sign-in, telemetry intake, webhooks, cloud providers, Redis, the
Responses API's reasoning envelope) is imported where it is first needed, so its resident memory (several MB
each: OpenSSL for `cryptography`, protobuf, an HTTP client) is paid only by the deployments that configure it.
Issue 18 bounds peak RSS at 100 MB; the start is most of it. That the lazily imported parts still work when
called is what their own tests check (tests/sso, tests/observe, tests/dialects/openai_responses, ...).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Top-level packages (or dotted prefixes) the default gateway must not have imported after building the app
# and running its startup.
NOT_AT_START = (
    "authlib", "joserfc", "httpx",  # gateway sign-in (sso)
    "google.protobuf", "opentelemetry",  # OTLP telemetry intake, tracing
    "cryptography",  # the Responses reasoning envelope, sign-in tokens
    "botocore", "boto3", "google.auth",  # Bedrock, Vertex credentials
    "redis",  # shared counters across instances
    "aiohttp",  # only behind an operator's HTTPS proxy (upstreams/proxied.py) and for alert webhooks
    "alembic",  # migrations run in a child process
    "jinja2",
    "sqlalchemy.dialects.postgresql",  # the default database is SQLite
)

PROBE = """
import asyncio, json, sys
from orgate.config import load_settings
from orgate.server.app import create_app

async def main():
    app = create_app(load_settings())
    await app.startup()
    try:
        loaded = sorted(sys.modules)
    finally:
        await app.shutdown()
    print(json.dumps(loaded))

asyncio.run(main())
"""


def _loaded_at_start(tmp_path: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORGATE_", "OTEL_", "DATABASE_URL", "REDIS"))}
    env["ORGATE_DATA_DIR"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_default_gateway_imports_no_optional_feature_at_start(tmp_path: Path) -> None:
    loaded = _loaded_at_start(tmp_path)
    assert "orgate.server.app" in loaded and "sqlalchemy" in loaded  # the probe ran the real app
    early = sorted(m for m in loaded if any(m == p or m.startswith(p + ".") for p in NOT_AT_START))
    assert early == []
