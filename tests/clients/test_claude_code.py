"""Claude Code (npm @anthropic-ai/claude-code) in print mode against orgate and the fake upstream.

The user sets only ANTHROPIC_BASE_URL (to orgate's /v1, as the service's setup guide says) and an orgate
key; Claude Code picks its own default model and betas.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import orjson
import pytest

from tests.fakes.anthropic_fake import text, tool_use

CLAUDE = shutil.which("claude") or "/work/clients/node_modules/.bin/claude"
pytestmark = [pytest.mark.clients,
              pytest.mark.skipif(not Path(CLAUDE).exists(), reason="Claude Code is not installed (npm i @anthropic-ai/claude-code)")]


def _env(gateway_url: str, key: str) -> dict[str, str]:
    return {**os.environ, "ANTHROPIC_BASE_URL": gateway_url + "/v1", "ANTHROPIC_API_KEY": key,
            "CLAUDE_CONFIG_DIR": tempfile.mkdtemp(prefix="claude-cfg-"), "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1"}


def test_claude_code_writes_a_file_through_orgate(gateway, fake, key, tmp_path):
    target = tmp_path / "hello.txt"

    def script(body):
        tools = {t.get("name") for t in body.get("tools", [])}
        last = body["messages"][-1]
        blocks = last["content"] if isinstance(last.get("content"), list) else []
        if "Write" in tools and not any(b.get("type") == "tool_result" for b in blocks):
            return tool_use("Write", {"file_path": str(target), "content": "hello from orgate\n"})
        return text("Done: wrote hello.txt.")

    fake.default = script
    p = subprocess.run([CLAUDE, "-p", "Create hello.txt containing 'hello from orgate'", "--permission-mode",
                        "acceptEdits", "--output-format", "json"], env=_env(gateway.url, key), cwd=tmp_path,
                       capture_output=True, text=True, timeout=150)
    assert p.returncode == 0, p.stdout + p.stderr
    result = orjson.loads(p.stdout.strip().splitlines()[-1])
    assert result["is_error"] is False and "Done" in result["result"]
    assert target.read_text() == "hello from orgate\n"
    # The tool round trip went through orgate: the second upstream request carries the tool_result.
    assert len(fake.requests) >= 2
    first, second = fake.requests[0], fake.requests[-1]
    assert first["path"] == "/v1/messages?beta=true" or first["path"].startswith("/v1/messages")
    assert "claude-code-20250219" in first["headers"]["anthropic-beta"]
    assert any(b.get("type") == "tool_result" for b in second["body"]["messages"][-1]["content"])
    rows = gateway.ledger(2, api="anthropic")
    assert all(r["stream"] for r in rows[-2:]) and rows[-1]["cost_micros"] > 0


def test_claude_code_bad_key_fails_fast(gateway, fake):
    started = time.monotonic()
    p = subprocess.run([CLAUDE, "-p", "hi", "--output-format", "json"], env=_env(gateway.url, "sk-ant-wrong"),
                       capture_output=True, text=True, timeout=150)
    elapsed = time.monotonic() - started
    assert p.returncode != 0 or '"is_error":true' in p.stdout.replace(" ", "")
    # Without x-should-retry: false Claude Code retries a 401 ten times over ~150 s.
    assert elapsed < 60, f"Claude Code kept retrying for {elapsed:.0f}s"
    assert fake.requests == []  # a bad key never reaches the provider
