"""Codex CLI (npm @openai/codex) on Claude through orgate's /v1/responses, against the fake upstream.

Two setups, as the README gives them:
- the built-in OpenAI provider: `openai_base_url` in config.toml (Codex >= 0.1xx ignores OPENAI_BASE_URL,
  openai/codex#16720) and the key from `codex login --with-api-key` (the built-in provider sends no
  OPENAI_API_KEY from the environment). This is the provider that tries a WebSocket first and compacts
  through the server;
- a custom model provider with `wire_api = "responses"` whose key comes from an environment variable.
`codex exec` runs one task non-interactively. The fake upstream answers the first agent turn with a tool_use
for the `exec_command` tool Codex declared (a shell command that creates a file), then with text.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from orgate.dialects.openai_responses.items import SUMMARY_PREFIX
from tests.clients.helpers import answers_tool, client_home, find_bin, json_lines, run, tool_names, tool_then_text
from tests.fakes.anthropic_fake import text, tool_use

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
    mark = gateway.ledger_mark()
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
    rows = gateway.ledger(2, after=mark, key_id=gateway.key_id(key), api="openai-responses")
    assert all(r["stream"] and r["status"] == 200 for r in rows[-2:])
    assert rows[-1]["cost_micros"] > 0


SUMMARY = "The user wants hello.txt with 'hi from claude'; printf already wrote it. Only the final reply remains."


def _has_summary(body) -> bool:
    return any(SUMMARY_PREFIX + SUMMARY in b.get("text", "") for m in body["messages"]
               if isinstance(m["content"], list) for b in m["content"])


def _builtin_script(work):
    """Tool turn reporting a large prompt (so Codex compacts before its next request), the summary for the
    summarization request, then the final answer once the summary is in the conversation."""

    def script(body):
        if "compact a coding agent" in str(body.get("system")):
            return text(SUMMARY, usage={"input_tokens": 900, "output_tokens": 60})
        if _has_summary(body):
            return text("Created hello.txt.", usage={"input_tokens": 300, "output_tokens": 10})
        if "exec_command" in tool_names(body) and not answers_tool(body):
            return tool_use("exec_command", {"cmd": "printf '%s' 'hi from claude' > hello.txt", "workdir": str(work)},
                            usage={"input_tokens": 6000, "output_tokens": 40})
        return text("Created hello.txt.", usage={"input_tokens": 300, "output_tokens": 10})

    return script


def test_codex_builtin_provider_tool_turn_and_compaction(gateway, fake, key):
    mark = gateway.ledger_mark()
    with client_home("codex-builtin") as home:
        codex_home, work = home / "codex-home", home / "work"
        codex_home.mkdir()
        work.mkdir()
        (codex_home / "config.toml").write_text(f'openai_base_url = "{gateway.url}/v1"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))}
        env.update({"CODEX_HOME": str(codex_home), "HOME": str(home), "NO_COLOR": "1",
                    "OPENAI_BASE_URL": gateway.url + "/v1", "OPENAI_API_KEY": key})
        login = subprocess.run([CODEX, "login", "--with-api-key"], input=key, env=env, capture_output=True,
                               text=True, timeout=60)
        assert login.returncode == 0, login.stderr
        fake.default = _builtin_script(work)
        started = time.monotonic()
        try:
            p = run([CODEX, "exec", "--skip-git-repo-check", "--json", "--sandbox", "danger-full-access",
                     "-m", "claude-sonnet-4.5", "-c", "model_auto_compact_token_limit=2000",
                     "Create a file named hello.txt containing exactly: hi from claude"], env=env, cwd=work)
        except subprocess.TimeoutExpired as e:
            seen = [(sorted(tool_names(r["body"]))[:2], str(r["body"]["messages"][-1])[:300]) for r in fake.requests]
            raise AssertionError(f"codex did not finish; upstream saw {len(seen)} requests: {seen[:6]}") from e
        elapsed = time.monotonic() - started
        events = json_lines(p.stdout)
        assert p.returncode == 0, f"rc={p.returncode} events={events} stderr={p.stderr[-3000:]}"
        assert (work / "hello.txt").read_text() == "hi from claude"
    items = [e["item"] for e in events if e.get("type") == "item.completed"]
    assert any(i.get("type") == "command_execution" and i.get("exit_code") == 0 for i in items), items
    assert any(i.get("type") == "agent_message" and i.get("text") == "Created hello.txt." for i in items), items
    # One WebSocket attempt, answered 426, then HTTP at once (a 404 cost five retries).
    assert p.stderr.count("failed to connect to Responses WebSocket") == 1, p.stderr[-2000:]
    assert elapsed < 60
    # The compaction went through orgate as a Claude summarization, and the turn continued on the summary.
    summaries = [r for r in fake.requests if "compact a coding agent" in str(r["body"].get("system"))]
    assert len(summaries) == 1
    assert "exec_command" in summaries[0]["body"]["messages"][0]["content"][0]["text"]
    after = [r for r in fake.requests if _has_summary(r["body"])]
    assert after and "exec_command" in tool_names(after[0]["body"])
    assert fake.requests[0]["headers"]["x-api-key"] != key  # the provider credential, never the client's
    # The tool turn, the compaction, the final answer: each a billed row.
    rows = gateway.ledger(3, after=mark, key_id=gateway.key_id(key), api="openai-responses")[-3:]
    assert [r["status"] for r in rows] == [200, 200, 200] and all(r["cost_micros"] > 0 for r in rows)
    assert rows[1]["input_tokens"] == 900 and rows[1]["output_tokens"] == 60  # the summarization's usage
