"""Codex CLI (npm @openai/codex) on Claude through orgate's /v1/responses, against the fake upstream.

Codex is configured the way a user would: a custom model provider with `wire_api = "responses"` whose
base_url is orgate's /v1 and whose key comes from an environment variable; `codex exec` runs one task
non-interactively. The fake upstream answers the first agent turn with a signed thinking block and a
tool_use for the `exec_command` tool Codex declared (a shell command that creates a file), then with text.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.clients.helpers import client_home, find_bin, json_lines, run, tool_then_text

CODEX = find_bin("codex")
pytestmark = [pytest.mark.clients,
              pytest.mark.skipif(CODEX is None, reason="Codex CLI is not installed (npm i @openai/codex)")]

SIGNATURE = "EqQBCkYIBRgCKkDcodexSignedThinking+/=" * 3
THINKING = {"type": "thinking", "thinking": "The user wants a file; I will run printf through the shell.",
            "signature": SIGNATURE}


def _config(base_url: str, model: str) -> str:
    return f"""\
model = "{model}"
model_provider = "orgate"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false

[model_providers.orgate]
name = "orgate"
base_url = "{base_url}"
env_key = "ORGATE_TEST_KEY"
wire_api = "responses"

[features]
plugins = false
"""


def test_codex_exec_runs_a_tool_through_orgate(gateway, fake, key):
    with client_home("codex") as home:
        codex_home, work = home / "codex-home", home / "work"
        codex_home.mkdir()
        work.mkdir()
        (codex_home / "config.toml").write_text(_config(gateway.url + "/v1", "claude-sonnet-4.5"))
        target = work / "hello.txt"
        fake.default = tool_then_text("exec_command", {"cmd": "printf '%s' 'hi from claude' > hello.txt",
                                                       "workdir": str(work)},
                                      "Created hello.txt.", thinking=THINKING)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))}
        env.update({"CODEX_HOME": str(codex_home), "ORGATE_TEST_KEY": key, "HOME": str(home), "NO_COLOR": "1",
                    "RUST_LOG": "error"})
        started = time.monotonic()
        p = run([CODEX, "exec", "--skip-git-repo-check", "--json", "--ephemeral",
                 "Create a file named hello.txt containing exactly: hi from claude"], env=env, cwd=work)
        elapsed = time.monotonic() - started
        events = json_lines(p.stdout)
        assert p.returncode == 0, f"rc={p.returncode} events={events} stderr={p.stderr[-3000:]}"
        assert target.read_text() == "hi from claude"
        assert elapsed < 90

    kinds = [e.get("type") for e in events]
    assert "turn.completed" in kinds, kinds
    items = [e["item"] for e in events if e.get("type") == "item.completed"]
    assert any(i.get("type") == "command_execution" for i in items), items
    assert any(i.get("type") == "agent_message" and "Created hello.txt" in i.get("text", "") for i in items), items

    # What reached the upstream: Codex's tools as Anthropic tools, then the tool result with the thinking
    # block of turn 1 replayed byte for byte (it travelled inside the reasoning item's encrypted_content).
    agent = [r for r in fake.requests if "exec_command" in {t["name"] for t in r["body"].get("tools", [])}]
    assert len(agent) >= 2
    first, second = agent[0]["body"], agent[-1]["body"]
    assert first["model"] == "claude-sonnet-4-5-20250929" and first["stream"] is True
    assert first["thinking"]["type"] == "enabled"
    assert first["system"] and "Codex" in first["system"][0]["text"]
    names = {t["name"] for t in first["tools"]}
    assert "web_search" not in names  # hosted tools are dropped
    assistant = [m for m in second["messages"] if m["role"] == "assistant"][-1]
    assert assistant["content"][0] == THINKING
    assert assistant["content"][-1]["type"] == "tool_use" and assistant["content"][-1]["name"] == "exec_command"
    result = second["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == assistant["content"][-1]["id"]
    rows = gateway.ledger(2, api="openai-responses")
    assert all(r["stream"] and r["status"] == 200 for r in rows[-2:])
    assert rows[-1]["cost_micros"] > 0
