"""Claude Code (npm @anthropic-ai/claude-code) in print mode against orgate and the fake upstream.

The user sets only ANTHROPIC_BASE_URL (to orgate's /v1, as the service's setup guide says) and an orgate
key; Claude Code picks its own default model and betas (no --model). The newest release on PATH
(scripts/test.sh pins it) and the oldest the README supports ($ORGATE_OLDEST_CLAUDE, 2.1.197) both run.
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
OLDEST = os.environ.get("ORGATE_OLDEST_CLAUDE") or str(Path(CLAUDE).parents[2] / "oldest/node_modules/.bin/claude")
pytestmark = [pytest.mark.clients,
              pytest.mark.skipif(not Path(CLAUDE).exists(), reason="Claude Code is not installed (npm i @anthropic-ai/claude-code)")]


def _env(gateway_url: str, key: str) -> dict[str, str]:
    return {**os.environ, "ANTHROPIC_BASE_URL": gateway_url + "/v1", "ANTHROPIC_API_KEY": key,
            "CLAUDE_CONFIG_DIR": tempfile.mkdtemp(prefix="claude-cfg-"), "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1"}


def _version(binary: str) -> str:
    return subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60).stdout.split()[0]


@pytest.mark.parametrize("which", ["newest", "oldest"])
def test_claude_code_writes_a_file_through_orgate(gateway, fake, key, tmp_path, which):
    binary = CLAUDE if which == "newest" else OLDEST
    if which == "oldest" and not Path(OLDEST).exists():
        if os.environ.get("ORGATE_OLDEST_CLAUDE"):  # scripts/test.sh installed it: its absence is a failure
            pytest.fail(f"the oldest supported Claude Code is not at {OLDEST}")
        pytest.skip("the oldest supported Claude Code is not installed here (scripts/test.sh installs it)")
    version = _version(binary)
    target = tmp_path / "hello.txt"

    def script(body):
        tools = {t.get("name") for t in body.get("tools", [])}
        last = body["messages"][-1]
        blocks = last["content"] if isinstance(last.get("content"), list) else []
        if "Write" in tools and not any(b.get("type") == "tool_result" for b in blocks):
            return tool_use("Write", {"file_path": str(target), "content": "hello from orgate\n"})
        return text("Done: wrote hello.txt.")

    fake.default = script
    mark = gateway.ledger_mark()
    p = subprocess.run([binary, "-p", "Create hello.txt containing 'hello from orgate'", "--permission-mode",
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
    rows = gateway.ledger(2, after=mark, key_id=gateway.key_id(key), api="anthropic")
    assert all(r["stream"] for r in rows[-2:]) and rows[-1]["cost_micros"] > 0
    # Its own default model, whatever the release: each one a listed, priced model (README "Clients tested").
    sent = {r["body"]["model"] for r in fake.requests}
    expected = {"2.1.332": {"claude-opus-5-5"}, "2.1.197": {"claude-opus-4-8"}}.get(version)
    assert expected is None or expected <= sent, (version, sent)
    assert all(r["public_model"] and not r["public_model"].endswith("*") for r in rows), rows


def test_claude_code_bad_key_fails_fast(gateway, fake):
    started = time.monotonic()
    p = subprocess.run([CLAUDE, "-p", "hi", "--output-format", "json"], env=_env(gateway.url, "sk-ant-wrong"),
                       capture_output=True, text=True, timeout=150)
    elapsed = time.monotonic() - started
    assert p.returncode != 0 or '"is_error":true' in p.stdout.replace(" ", "")
    # Without x-should-retry: false Claude Code retries a 401 ten times over ~150 s.
    assert elapsed < 60, f"Claude Code kept retrying for {elapsed:.0f}s"
    assert fake.requests == []  # a bad key never reaches the provider


def test_claude_code_model_discovery_reads_orgate_models(gateway, fake, key, tmp_path):
    """CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1: Claude Code lists orgate's models, 1M variants included."""
    fake.default = lambda body: text("ok")
    env = {**_env(gateway.url, key), "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1"}
    p = subprocess.run([CLAUDE, "-p", "hi", "--output-format", "json"], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=150)
    assert p.returncode == 0, p.stdout + p.stderr
    cache = Path(env["CLAUDE_CONFIG_DIR"]) / "cache" / "gateway-models.json"
    deadline = time.monotonic() + 10
    while not cache.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cache.exists(), sorted(str(x) for x in Path(env["CLAUDE_CONFIG_DIR"]).rglob("*"))[:40]
    listed = cache.read_text()
    for mid in ("claude-opus-5.5", "claude-opus-5.5[1m]", "claude-haiku-5.5", "Claude Sonnet 5.5 (1M context)"):
        assert mid in listed, listed[:2000]
    assert "1M context" in listed  # descriptions reach the picker's cache
