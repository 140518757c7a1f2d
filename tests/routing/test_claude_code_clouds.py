"""Claude Code through orgate to Bedrock and Vertex fakes that refuse unsupported betas and beta-gated fields,
and Claude Code's captured request through the Anthropic provider, byte for byte."""

from __future__ import annotations

import os
import tempfile

import httpx
import orjson
import pytest

from tests.clients.helpers import answers_tool, find_bin, run, tool_names
from tests.fakes.bedrock_fake import Reply, text_message, tool_use_message
from tests.paths import CLIENT_CAPTURES
from tests.routing.conftest import MODELS

CLAUDE = find_bin("claude")


def _agent_turn(target: str):
    def script(body):
        if "Write" in tool_names(body) and not answers_tool(body):
            return Reply(message=tool_use_message("Write", {"file_path": target, "content": "hello from the cloud\n"}))
        return Reply(message=text_message("Done: wrote it."))
    return script


@pytest.mark.clients
@pytest.mark.skipif(CLAUDE is None, reason="Claude Code is not installed (scripts/test.sh installs it)")
@pytest.mark.parametrize("provider", ["bedrock", "bedrock-messages", "vertex"])
def test_claude_code_tool_turn_on_a_cloud(gw, clouds, key, provider, tmp_path):
    target = tmp_path / "hello.txt"
    fake = clouds.vertex if provider == "vertex" else clouds.bedrock
    fake.default = _agent_turn(str(target))
    # bedrock-messages: Claude Opus 5.5 on Bedrock's Messages API (/anthropic/v1/messages, betas in the header)
    model = MODELS.get(provider, "aws/anthropic/us.anthropic.claude-opus-5-5")
    env = {**os.environ, "ANTHROPIC_BASE_URL": gw.url + "/v1", "ANTHROPIC_API_KEY": key,
           "ANTHROPIC_MODEL": model, "ANTHROPIC_SMALL_FAST_MODEL": model, "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
           "CLAUDE_CONFIG_DIR": tempfile.mkdtemp(prefix="claude-cfg-"), "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
           "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1"}
    p = run([CLAUDE, "-p", "Create hello.txt containing 'hello from the cloud'", "--permission-mode", "acceptEdits",
             "--output-format", "json"], env=env, cwd=tmp_path, timeout=150)
    assert p.returncode == 0, p.stdout + p.stderr
    result = orjson.loads(p.stdout.strip().splitlines()[-1])
    assert result["is_error"] is False and "Done" in result["result"], result
    assert target.read_text() == "hello from the cloud\n"
    bodies = [r for r in fake.requests
              if r.json is not None and r.model != "count-tokens" and r.action not in ("count-tokens", "count_tokens")]
    assert any(answers_tool(r.json) for r in bodies)  # the tool round trip went through the cloud
    sent = bodies[0]
    if provider == "bedrock-messages":
        assert all(r.raw_path == "/anthropic/v1/messages" for r in bodies)
    betas = sent.json.get("anthropic_beta", []) if provider == "bedrock" else sent.headers.get("anthropic-beta", "").split(",")
    assert "claude-code-20250219" in betas and "advanced-tool-use-2025-11-20" not in betas


def test_captured_claude_code_request_byte_for_byte_on_anthropic_and_bridged_on_clouds(gw, clouds, key):
    captured = orjson.loads((CLIENT_CAPTURES / "claude_write.json").read_bytes())[0]
    headers = {k: v for k, v in captured["headers"].items()
               if k.startswith(("anthropic-", "x-claude-code", "x-stainless")) or k in ("user-agent", "x-app")}
    headers.update({"x-api-key": key, "content-type": "application/json"})
    results = {}
    for provider, model in MODELS.items():
        body = {**captured["body"], "model": model, "stream": False}
        raw = orjson.dumps(body)
        r = httpx.post(gw.url + "/v1/messages?beta=true", content=raw, headers=headers, timeout=30)
        results[provider] = r.status_code
        assert r.status_code == 200, (provider, r.text)
        if provider == "anthropic":
            up = [q for q in clouds.anthropic.requests if q["path"].startswith("/v1/messages")][-1]
            # only the model id is swapped: every other byte, and the beta header, as the client sent them
            assert up["raw"] == raw.replace(orjson.dumps(model), orjson.dumps(up["body"]["model"]))
            assert up["headers"]["anthropic-beta"] == captured["headers"]["anthropic-beta"]
    assert results == {"anthropic": 200, "bedrock": 200, "vertex": 200}
    bedrock_sent = clouds.bedrock.requests[-1].json
    assert "tool-search-tool-2025-10-19" in bedrock_sent["anthropic_beta"]
    assert "thinking-token-count-2026-05-13" not in bedrock_sent["anthropic_beta"]
