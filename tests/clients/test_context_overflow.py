"""A context overflow reaches each real client in the wording it acts on, and the client compacts instead
of retrying forever or dying: Claude Code on /v1/messages, Codex on /v1/responses, OpenCode on
/v1/chat/completions."""

from __future__ import annotations

import os
import tempfile

import orjson
import pytest

from tests.clients.helpers import client_home, find_bin, json_lines, run, tool_names
from tests.fakes.anthropic_fake import error, text, tool_use

CLAUDE = find_bin("claude")
TOO_LONG = "prompt is too long: 215000 tokens > 200000 maximum"
BIG = "".join(f"line {i}: some generated text to make the conversation large\\n" for i in range(2000))


def _summary_request(body: dict) -> bool:
    """Claude Code's compaction call: its last user turn asks for a summary of the conversation so far."""
    last = body.get("messages", [])[-1]
    content = last.get("content")
    texts = [content] if isinstance(content, str) else [b.get("text", "") for b in content or [] if b.get("type") == "text"]
    blob = " ".join(texts).lower()
    return last.get("role") == "user" and "summary" in blob and "conversation" in blob


def _tool_results(body: dict) -> int:
    return sum(1 for m in body["messages"] for b in (m["content"] if isinstance(m["content"], list) else [])
               if b.get("type") == "tool_result")


def _overflow_after_two_tools(tool: str, args, summary=None):
    """An agent session for the fake: two calls of `tool`, then one context overflow, then text (a summary
    for the client's compaction request when `summary` recognises it). Returns the script, the request bodies
    seen and a state dict with the number of overflows sent."""
    seen: list[dict] = []
    state = {"errored": 0}

    def script(body):
        seen.append(body)
        if summary is not None and summary(body):
            return text("<summary>The user asked for files; they were written.</summary>")
        results = _tool_results(body)
        if not state["errored"] and results >= 2:
            state["errored"] += 1
            return error(400, "invalid_request_error", TOO_LONG)
        if not state["errored"] and tool in tool_names(body):
            return tool_use(tool, args(results))
        return text("Done after compaction.")

    return script, seen, state


@pytest.mark.clients
@pytest.mark.skipif(CLAUDE is None, reason="Claude Code is not installed")
def test_claude_code_compacts_on_prompt_too_long(gateway, fake, key, tmp_path):
    mark = gateway.ledger_mark()
    script, seen, state = _overflow_after_two_tools(
        "Write", lambda n: {"file_path": str(tmp_path / f"part{n}.txt"), "content": BIG}, _summary_request)
    fake.default = script
    env = {**os.environ, "ANTHROPIC_BASE_URL": gateway.url + "/v1", "ANTHROPIC_API_KEY": key,
           "CLAUDE_CONFIG_DIR": tempfile.mkdtemp(prefix="claude-cfg-"), "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
           "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1"}
    p = run([CLAUDE, "-p", "Create hello.txt containing hi", "--permission-mode", "acceptEdits", "--output-format",
             "json"], env=env, cwd=tmp_path, timeout=150)
    assert p.returncode == 0, p.stdout + p.stderr
    result = orjson.loads(p.stdout.strip().splitlines()[-1])
    assert result["is_error"] is False and result["result"] == "Done after compaction.", result
    # The overflow came back as Anthropic's own error (Claude Code parsed it), Claude Code summarised the
    # conversation once and went on: no retry of the refused request, no dead session.
    assert state["errored"] == 1
    summaries = [i for i, b in enumerate(seen) if _summary_request(b)]
    assert len(summaries) == 1 and summaries[0] == 3, [len(seen), summaries]
    assert len(seen) == 5
    after = orjson.dumps(seen[4]["messages"])
    assert after.count(b"line 1999:") < orjson.dumps(seen[2]["messages"]).count(b"line 1999:")  # it shrank
    rows = gateway.ledger(5, after=mark, key_id=gateway.key_id(key), api="anthropic")
    assert [r["status"] for r in rows[-5:]].count(400) == 1


CODEX = find_bin("codex")


@pytest.mark.clients
@pytest.mark.skipif(CODEX is None, reason="Codex CLI is not installed")
def test_codex_on_context_length_exceeded(gateway, fake, key):
    from tests.clients.test_codex import _config
    holder: dict = {}
    mark = gateway.ledger_mark()
    script, seen, state = _overflow_after_two_tools(
        "exec_command", lambda n: {"cmd": f"echo part{n}", "workdir": str(holder["work"])})
    with client_home("codex") as home:
        codex_home, work = home / "codex-home", home / "work"
        codex_home.mkdir()
        work.mkdir()
        holder["work"] = work
        (codex_home / "config.toml").write_text(_config(gateway.url + "/v1", "claude-sonnet-4.5"))
        fake.default = script
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))}
        env.update({"CODEX_HOME": str(codex_home), "ORGATE_TEST_KEY": key, "HOME": str(home), "NO_COLOR": "1",
                    "RUST_LOG": "error"})
        p = run([CODEX, "exec", "--skip-git-repo-check", "--json", "--ephemeral", "Run two echo commands"],
                env=env, cwd=work, timeout=120)
    events = json_lines(p.stdout)
    # Codex recognises the `context_length_exceeded` code (its ContextWindowExceeded path): it stops the turn
    # with its context-window message instead of retrying, and never sends the refused request again.
    failed = [e for e in events if e.get("type") == "turn.failed"]
    assert failed and "context window" in failed[0]["error"]["message"], events
    agent = [b for b in seen if "exec_command" in tool_names(b)]
    assert state["errored"] == 1 and len(agent) == 3, len(agent)
    rows = gateway.ledger(3, after=mark, key_id=gateway.key_id(key), api="openai-responses")
    assert rows[-1]["status"] == 400


OPENCODE = find_bin("opencode")


@pytest.mark.clients
@pytest.mark.skipif(OPENCODE is None, reason="OpenCode is not installed")
def test_opencode_on_context_length_exceeded(gateway, fake, key):
    from tests.clients.test_opencode import _config, _env
    script, seen, state = _overflow_after_two_tools("bash", lambda n: {"command": f"echo part{n}", "description": "echo"})
    fake.default = script
    with client_home("opencode") as home:
        work = home / "work"
        work.mkdir()
        env = _env(home, _config("@ai-sdk/openai-compatible", gateway.url + "/v1", "claude-sonnet-4.5"), key)
        env["PWD"] = str(work)
        p = run([OPENCODE, "run", "--format", "json", "--auto", "Run two echo commands"], env=env, cwd=work,
                timeout=120)
    events = json_lines(p.stdout)  # `opencode run` exits 1 when any error was reported, recovered or not
    assert events and events[-1].get("type") == "step_finish" and events[-1]["part"]["reason"] == "stop", events[-3:]
    errors = [e["error"] for e in events if e.get("type") == "error"]
    # OpenCode classifies the error by the OpenAI code and wording orgate sent, then compacts and goes on.
    assert errors and errors[0]["name"] == "ContextOverflowError", events
    assert '"code":"context_length_exceeded"' in errors[0]["data"]["responseBody"]
    summaries = [i for i, b in enumerate(seen) if not tool_names(b) and "conversation so far" in orjson.dumps(b).decode()]
    assert state["errored"] == 1 and len(summaries) == 1, [len(seen), summaries]
    after = seen[summaries[0] + 1:]
    assert after and all(len(b["messages"]) < 5 for b in after)  # continued from the compacted history
    texts = [(e.get("part") or {}).get("text", "") for e in events if e.get("type") == "text"]
    assert "Done after compaction." in texts
