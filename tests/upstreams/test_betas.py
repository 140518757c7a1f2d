"""Beta bridging toward Bedrock and Vertex: the table, the dropped gated fields, the operator's overrides,
and the adapters against fakes that refuse what the clouds refuse."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from orgate.config import Provider, RoutingSettings
from orgate.routing.catalog import Target
from orgate.upstreams import http
from orgate.upstreams.base import UpstreamCall
from orgate.upstreams.bedrock import BedrockUpstream
from orgate.upstreams.betas import BetaPolicy
from orgate.upstreams.vertex import VertexUpstream
from tests.fakes.bedrock_fake import BedrockFake
from tests.fakes.vertex_fake import VertexFake, make_service_account
from tests.paths import SHARED
from tests.upstreams import answered

# What Claude Code 2.1.330 sent (shared/spec/clients/claude_write.json): its betas and beta-gated fields.
CC_BETAS = ("claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,"
            "thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20,thinking-display-updates-2026-08-18")
CC_BODY = {
    "model": "claude-sonnet-4-5", "max_tokens": 32000,
    "thinking": {"budget_tokens": 31999, "display": "updates", "type": "enabled"},
    "context_management": {"edits": [{"keep": "all", "type": "clear_thinking_20251015"}]},
    "tools": [{"name": "Bash", "description": "run", "defer_loading": True,
               "input_schema": {"type": "object", "properties": {}}}],
    "messages": [{"role": "user", "content": "hi"}],
}


def test_claude_code_betas_are_bridged_for_each_cloud():
    betas = CC_BETAS.split(",")
    for kind in ("bedrock", "vertex"):
        kept, body = BetaPolicy.for_provider(kind).bridge(betas, CC_BODY)
        # the 1P tool-search beta becomes the clouds' name; the 1P-only token-count beta is dropped
        assert kept == ["claude-code-20250219", "interleaved-thinking-2025-05-14", "context-management-2025-06-27",
                        "tool-search-tool-2025-10-19", "thinking-display-updates-2026-08-18"], kind
        assert body is CC_BODY  # nothing the kept betas gate is removed, and no copy is made


def test_dropped_beta_takes_its_fields_along_and_nothing_else():
    body = {**CC_BODY, "mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}], "speed": "fast",
            "output_config": {"effort": "high", "format": {"type": "json_schema", "schema": {}}}}
    betas = ["mcp-client-2025-11-20", "fast-mode-2026-02-01", "effort-2025-11-24", "structured-outputs-2025-11-13",
             "context-management-2025-06-27"]
    kept, out = BetaPolicy.for_provider("vertex").bridge(betas, body)
    assert kept == ["context-management-2025-06-27"]
    assert "mcp_servers" not in out and "speed" not in out and "output_config" not in out
    assert out["context_management"] == body["context_management"] and out["tools"] == body["tools"]
    assert body["speed"] == "fast" and "mcp_servers" in body  # the caller's dict is not changed
    kept, out = BetaPolicy.for_provider("bedrock").bridge(betas, body)  # Bedrock runs effort
    assert "effort-2025-11-24" in kept and out["output_config"] == {"effort": "high"}


def test_gated_field_without_any_beta_is_left_alone():
    body = {**CC_BODY}
    kept, out = BetaPolicy.for_provider("bedrock").bridge([], body)
    assert kept == [] and out is body


def test_operator_override_adds_and_removes():
    p = BetaPolicy.for_provider("bedrock", add=["fast-mode-2026-02-01"], remove=["context-management-2025-06-27"])
    kept, out = p.bridge(["fast-mode-2026-02-01", "context-management-2025-06-27"], {**CC_BODY, "speed": "fast"})
    assert kept == ["fast-mode-2026-02-01"]
    assert out["speed"] == "fast" and "context_management" not in out


def test_vertex_count_tokens_takes_no_beta():
    p = BetaPolicy.for_provider("vertex")
    kept, out = p.bridge(CC_BETAS.split(","), CC_BODY, counting=True)
    assert kept == [] and "context_management" not in out and "defer_loading" not in out["tools"][0]


def test_captured_claude_code_request_is_covered():
    """Every beta Claude Code was seen sending is either forwarded, renamed, or dropped on purpose."""
    captured = json.loads((SHARED / "spec/clients/claude_write.json").read_text())
    for rec in captured:
        betas = rec["headers"]["anthropic-beta"].split(",")
        kept, _ = BetaPolicy.for_provider("bedrock").bridge(betas, rec["body"])
        assert "claude-code-20250219" in kept and "advanced-tool-use-2025-11-20" not in kept


# ---------------------------------------------------------------- adapters against the refusing fakes


@pytest_asyncio.fixture
async def bedrock() -> AsyncIterator[BedrockFake]:
    f = BedrockFake()
    await f.start()
    yield f
    await f.stop()
    await http.close_session()


@pytest_asyncio.fixture
async def vertex(tmp_path: Path) -> AsyncIterator[tuple[VertexFake, Path]]:
    f = VertexFake(project="fake-project")
    await f.start()
    path, public = make_service_account(tmp_path, f.token_url)
    f.add_account(json.loads(path.read_text())["client_email"], public)
    yield f, path
    await f.stop()
    await http.close_session()


def _bedrock(fake: BedrockFake, **kw) -> BedrockUpstream:
    p = Provider(type="bedrock", region="us-east-1", base_url=fake.url, aws_access_key_id="AKIDFAKEEXAMPLE",
                 aws_secret_access_key="fake/secret/key", **kw)
    return answered(BedrockUpstream("bedrock", p, RoutingSettings()))


def _vertex(fake: VertexFake, sa: Path, **kw) -> VertexUpstream:
    p = Provider(type="vertex", region="us-east5", base_url=fake.api_base, credentials_file=str(sa),
                 project_id="fake-project", token_url=fake.token_url, **kw)
    return answered(VertexUpstream("vertex", p, RoutingSettings()))


def _call(model: str, stream: bool = False) -> UpstreamCall:
    return UpstreamCall(Target("x", "x", model), dict(CC_BODY), stream, anthropic_beta=CC_BETAS)


async def test_bedrock_accepts_claude_code_request_after_bridging(bedrock):
    resp = await _bedrock(bedrock).messages(_call("us.anthropic.claude-sonnet-4-5-20250929-v1:0"))
    assert resp.status == 200, await resp.read()
    sent = bedrock.requests[-1].json
    assert "tool-search-tool-2025-10-19" in sent["anthropic_beta"] and sent["tools"][0]["defer_loading"] is True


async def test_bedrock_fake_refuses_what_bedrock_refuses(bedrock):
    # An operator override that forces an unsupported beta through shows the fake's refusal in Bedrock's words.
    resp = await _bedrock(bedrock, betas_add=["thinking-token-count-2026-05-13"]).messages(_call("anthropic.claude-x"))
    assert resp.status == 400 and b"invalid beta flag" in await resp.read()
    # Withholding the beta but not its field: the field is dropped with it, so Bedrock takes the request.
    resp = await _bedrock(bedrock, betas_remove=["context-management-2025-06-27"]).messages(_call("anthropic.claude-x"))
    assert resp.status == 200 and "context_management" not in bedrock.requests[-1].json


async def test_vertex_accepts_claude_code_request_and_counts_without_betas(vertex):
    fake, sa = vertex
    up = _vertex(fake, sa)
    resp = await up.messages(_call("claude-sonnet-4-5@20250929", stream=True))
    assert resp.status == 200, await resp.read()
    await resp.read()
    assert fake.requests[-1].headers["anthropic-beta"].split(",")[3] == "tool-search-tool-2025-10-19"
    resp = await up.count_tokens(_call("claude-sonnet-4-5@20250929"))
    assert resp.status == 200, await resp.read()
    assert "anthropic-beta" not in fake.requests[-1].headers


async def test_vertex_fake_refuses_unknown_beta_and_orphan_field(vertex):
    fake, sa = vertex
    resp = await _vertex(fake, sa, betas_add=["effort-2025-11-24"]).messages(
        UpstreamCall(Target("x", "x", "claude-sonnet-4-5@20250929"), dict(CC_BODY), False,
                     anthropic_beta="effort-2025-11-24,context-management-2025-06-27"))
    body = await resp.read()
    assert resp.status == 400 and b"Unexpected value(s) `effort-2025-11-24`" in body
    fake.accepted_betas.discard("context-management-2025-06-27")  # a cloud that does not run it ...
    resp = await _vertex(fake, sa, betas_add=["context-management-2025-06-27"]).messages(
        UpstreamCall(Target("x", "x", "claude-sonnet-4-5@20250929"), dict(CC_BODY), False))
    # ... and a gated field sent with no beta at all: refused as the real validator words it
    assert resp.status == 400 and b"context_management: Extra inputs are not permitted" in await resp.read()
