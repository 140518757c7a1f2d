"""OpenCode (npm opencode-ai) through orgate, against the fake upstream.

OpenCode is configured the way a user would (OPENCODE_CONFIG_CONTENT with a custom provider), once with
`@ai-sdk/openai-compatible` pointing at orgate's /v1 (it then speaks Chat Completions) and once with
`@ai-sdk/anthropic` pointing at orgate's /v1 (Anthropic Messages). `opencode run` is non-interactive; the
fake upstream answers the agent turn with a tool_use for OpenCode's file-writing tool, then with text.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.clients.helpers import answers_tool, client_home, find_bin, json_lines, run, tool_names
from tests.fakes.anthropic_fake import Reply, text, tool_use

OPENCODE = find_bin("opencode")
pytestmark = [pytest.mark.clients,
              pytest.mark.skipif(OPENCODE is None, reason="OpenCode is not installed (npm i opencode-ai)")]

CONTENT = "hi from claude"
FINAL = "I created hello.txt."
USAGE = {"input_tokens": 1200, "output_tokens": 40, "cache_read_input_tokens": 800,
         "cache_creation_input_tokens": 100}


SIG = "EqQBCkYIBxgCKkBopencodeSigned+/thinking==" * 3
THINKING = {"type": "thinking", "thinking": "I will write hello.txt with the write tool.", "signature": SIG}


def _script(thinking: dict[str, Any] | None = None) -> Any:
    """Agent turn: write hello.txt with the tool OpenCode declared (`write`, else `bash`), then finish.
    Requests without those tools (OpenCode's session-title generation) get a plain title."""

    def script(body: dict[str, Any]) -> Reply:
        tools = tool_names(body)
        if answers_tool(body) or not tools & {"write", "bash"}:
            return text(FINAL if tools else "Hello file", usage=USAGE)
        if "write" in tools:  # relative paths resolve against OpenCode's project directory (its cwd)
            reply = tool_use("write", {"filePath": "hello.txt", "content": CONTENT}, usage=USAGE)
        else:
            reply = tool_use("bash", {"command": f"printf '%s' '{CONTENT}' > hello.txt",
                                      "description": "Create hello.txt"}, usage=USAGE)
        if thinking is not None:
            reply.blocks.insert(0, dict(thinking))
        return reply

    return script


def _env(home: Path, config: dict[str, Any], key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "OPENCODE_"))}
    env.update({
        "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_CACHE_HOME": str(home / ".cache"), "XDG_STATE_HOME": str(home / ".local/state"),
        "OPENCODE_CONFIG_CONTENT": orjson.dumps(config).decode(), "ORGATE_TEST_KEY": key,
        "OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_MODELS_FETCH": "1",
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1", "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1", "OPENCODE_DISABLE_SHARE": "1",
        "npm_config_registry": "http://127.0.0.1:9/", "NO_COLOR": "1",
    })
    return env


def _config(npm: str, base_url: str, model: str) -> dict[str, Any]:
    return {
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": False, "share": "disabled",
        "model": f"orgate/{model}", "small_model": f"orgate/{model}",
        "permission": {"edit": "allow", "bash": "allow", "external_directory": "allow"},
        "provider": {"orgate": {
            "npm": npm, "name": "orgate",
            "options": {"baseURL": base_url, "apiKey": "{env:ORGATE_TEST_KEY}"},
            "models": {model: {"name": model, "tool_call": True, "reasoning": False,
                               "limit": {"context": 200000, "output": 8192}}},
        }},
    }


def _run_opencode(gateway_url: str, key: str, npm: str, model: str) -> tuple[Any, list[dict[str, Any]], float, str]:
    with client_home("opencode") as home:
        work = home / "work"
        work.mkdir()
        target = work / "hello.txt"
        env = _env(home, _config(npm, gateway_url + "/v1", model), key)
        env["PWD"] = str(work)  # OpenCode takes its project directory from $PWD, not from its real cwd
        started = time.monotonic()
        p = run([OPENCODE, "run", "--format", "json", "--auto", "Create a file named hello.txt containing exactly: "
                 + CONTENT], env=env, cwd=work, timeout=85)
        elapsed = time.monotonic() - started
        events = json_lines(p.stdout)
        written = target.read_text() if target.exists() else None
        assert p.returncode == 0, f"rc={p.returncode} events={events} stderr={p.stderr[-3000:]}"
    return written, events, elapsed, p.stdout


def test_opencode_openai_compatible_writes_a_file(gateway, fake, key):
    fake.default = _script()
    mark = gateway.ledger_mark()
    written, events, elapsed, out = _run_opencode(gateway.url, key, "@ai-sdk/openai-compatible", "claude-sonnet-4.5")
    assert written == CONTENT, out[-3000:]
    assert elapsed < 90
    tools = [e for e in events if e.get("type") == "tool_use"]
    assert tools and tools[0]["part"]["state"]["status"] == "completed", events
    assert any(FINAL in (e.get("part") or {}).get("text", "") for e in events if e.get("type") == "text"), events

    agent = [r["body"] for r in fake.requests if tool_names(r["body"])]
    assert len(agent) >= 2
    first, second = agent[0], agent[-1]
    assert first["model"] == "claude-sonnet-4-5-20250929" and first["stream"] is True
    assert first["system"][0]["text"].startswith("You are")  # OpenCode's system message hoisted
    assistant = second["messages"][-2]
    assert assistant["role"] == "assistant" and assistant["content"][-1]["type"] == "tool_use"
    assert second["messages"][-1]["content"][0]["tool_use_id"] == assistant["content"][-1]["id"]
    rows = gateway.ledger(2, after=mark, key_id=gateway.key_id(key), api="openai-chat")
    assert all(r["stream"] and r["status"] == 200 for r in rows[-2:])
    assert rows[-1]["cache_read_tokens"] == 800 and rows[-1]["cost_micros"] > 0


def test_opencode_anthropic_provider_writes_a_file(gateway, fake, key):
    fake.default = _script()
    mark = gateway.ledger_mark()
    written, events, elapsed, out = _run_opencode(gateway.url, key, "@ai-sdk/anthropic", "claude-sonnet-4-5")
    assert written == CONTENT, out[-3000:]
    assert elapsed < 90
    agent = [r for r in fake.requests if tool_names(r["body"])]
    assert len(agent) >= 2 and agent[0]["headers"]["x-api-key"] != key
    assert any(b.get("type") == "tool_result" for b in agent[-1]["body"]["messages"][-1]["content"])
    rows = gateway.ledger(2, after=mark, key_id=gateway.key_id(key), api="anthropic")
    assert rows[-1]["status"] == 200


def test_opencode_openai_responses_replays_signed_thinking(gateway, fake, key):
    """`@ai-sdk/openai` speaks /v1/responses: the thinking of the tool turn comes back inside the reasoning
    item's encrypted_content and reaches the upstream unchanged on the next request."""
    fake.default = _script(THINKING)
    mark = gateway.ledger_mark()
    written, events, elapsed, out = _run_opencode(gateway.url, key, "@ai-sdk/openai", "claude-sonnet-4.5")
    assert written == CONTENT, out[-3000:]
    assert elapsed < 90
    agent = [r for r in fake.requests if tool_names(r["body"])]
    assert len(agent) >= 2
    assistant = agent[-1]["body"]["messages"][-2]
    assert assistant["role"] == "assistant" and assistant["content"][0] == THINKING
    assert orjson.dumps(THINKING) in agent[-1]["raw"]
    rows = gateway.ledger(2, after=mark, key_id=gateway.key_id(key), api="openai-responses")
    assert all(r["stream"] and r["status"] == 200 for r in rows[-2:])
