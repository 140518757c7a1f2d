"""Which `anthropic-beta` values each cloud accepts, and the body fields that travel with them.

Claude Code sends its full beta set over the Anthropic format whatever the upstream (spec
claude-code-gateway.md §1). Anthropic's own API takes everything, so the anthropic adapter never calls this
module and its bytes pass unchanged. Bedrock answers an unknown beta with `400 invalid beta flag`, Vertex with
"Unexpected value(s) `…` for the `anthropic-beta` header", and both answer a beta-gated field whose beta is
missing with "Extra inputs are not permitted". So toward a cloud orgate forwards only the betas in the table
below (renamed where the cloud knows a feature by another name) and drops a gated body field when the request
asked for it through a beta the cloud does not take.

The table is data: an operator adds or removes entries per provider (`betas_add` / `betas_remove` in the
provider's config) when a cloud ships or retires a beta before orgate's table follows.

Sources (read 2026-12):
- AWS, "Anthropic Claude Messages API — Request and Response" (bedrock/latest/userguide/
  model-parameters-anthropic-claude-messages-request-response.html): `anthropic_beta` in the body, values
  computer-use-2024-10-22 / 2025-01-24, token-efficient-tools-2025-02-19, interleaved-thinking-2025-05-14,
  output-128k-2025-02-19, dev-full-thinking-2025-05-14, context-1m-2025-08-07,
  context-management-2025-06-27, effort-2025-11-24, tool-search-tool-2025-10-19, tool-examples-2025-10-29;
  "Compaction" page: compact-2026-01-12.
- Claude Code's own provider split (constants/betas.ts): tool search is `advanced-tool-use-2025-11-20` on the
  Claude API and `tool-search-tool-2025-10-19` on Vertex AI and Bedrock; claude-code-20250219 is sent to both.
- Anthropic, "Claude on Vertex AI" (platform.claude.com/docs/en/build-with-claude/claude-on-vertex-ai) and
  Google, "Web search with Anthropic Claude models" (vertex-ai/generative-ai/docs/partner-models/claude/
  web-search): web-search-2025-03-05, tool search, context management, 1M context on Vertex.
- Rejections reported from the clouds: Vertex refuses effort-2025-11-24, prompt-caching-scope-2026-01-05,
  structured-outputs-2025-11-13/-12-15 (anthropics/claude-code#34802, #21625; vercel/ai#10981) and every beta
  on count-tokens (anthropics/claude-code#11154, #12429); Bedrock refuses oauth-2025-04-20,
  prompt-caching-scope-2026-01-05, fast-mode-2026-02-01, mcp-servers-2025-12-04 (router-for-me/CLIProxyAPI#4750,
  BerriAI/litellm#19877).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_COMMON = frozenset({
    "claude-code-20250219",
    "computer-use-2024-10-22", "computer-use-2025-01-24", "computer-use-2025-11-24",
    "interleaved-thinking-2025-05-14",
    "context-1m-2025-08-07",
    "context-management-2025-06-27",
    "compact-2026-01-12",
    "tool-search-tool-2025-10-19",
    "thinking-display-updates-2026-08-18",
})  # fmt: skip

ACCEPTED: dict[str, frozenset[str]] = {
    "bedrock": _COMMON | {
        "token-efficient-tools-2025-02-19", "output-128k-2025-02-19", "dev-full-thinking-2025-05-14",
        "effort-2025-11-24", "tool-examples-2025-10-29",
    },
    "vertex": _COMMON | {"web-search-2025-03-05"},
}
# Vertex's count-tokens endpoint refuses every beta (anthropics/claude-code#11154).
COUNT_TOKENS_ACCEPTED: dict[str, frozenset[str]] = {"vertex": frozenset()}

# The same feature under the cloud's name (Claude Code's betas.ts: TOOL_SEARCH_BETA_HEADER_1P / _3P).
RENAMED: dict[str, dict[str, str]] = {
    "bedrock": {"advanced-tool-use-2025-11-20": "tool-search-tool-2025-10-19"},
    "vertex": {"advanced-tool-use-2025-11-20": "tool-search-tool-2025-10-19"},
}

_STRUCTURED = ("structured-outputs-2025-11-13", "structured-outputs-2025-12-15")
_TOOL_SEARCH = ("advanced-tool-use-2025-11-20", "tool-search-tool-2025-10-19")
# Body field -> the betas that enable it (api-reference §A.3 "beta-only" rows; spec §1 "Body").
# `tools[].x` is a key of each tool; `a.b` a key inside an object field.
GATED: dict[str, tuple[str, ...]] = {
    "context_management": ("context-management-2025-06-27", "compact-2026-01-12"),
    "mcp_servers": ("mcp-client-2025-04-04", "mcp-client-2025-11-20"),
    "output_format": _STRUCTURED,
    "output_config.format": _STRUCTURED,
    "output_config.effort": ("effort-2025-11-24",),
    "speed": ("fast-mode-2026-02-01",),
    "diagnostics": ("cache-diagnosis-2026-04-07",),
    "fallbacks": ("server-side-fallback-2026-06-01", "server-side-fallback-2026-07-01"),
    "fallback_credit_token": ("fallback-credit-2026-06-01", "fallback-credit-2026-07-01"),
    "tools[].strict": _STRUCTURED,
    "tools[].defer_loading": _TOOL_SEARCH,
    "tools[].input_examples": ("tool-examples-2025-10-29",),
}


def split(header: str | None) -> list[str]:
    return [b.strip() for b in (header or "").split(",") if b.strip()]


@dataclass(frozen=True, slots=True)
class BetaPolicy:
    """What one cloud provider takes: the accepted betas (after the operator's overrides) and renames."""

    accepted: frozenset[str]
    renamed: dict[str, str]
    count_tokens_accepted: frozenset[str] | None = None

    @classmethod
    def for_provider(cls, kind: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> BetaPolicy:
        extra, gone = frozenset(add), frozenset(remove)
        counting = COUNT_TOKENS_ACCEPTED.get(kind)
        return cls(
            accepted=(ACCEPTED.get(kind, frozenset()) | extra) - gone,
            renamed={k: v for k, v in RENAMED.get(kind, {}).items() if k not in gone},
            count_tokens_accepted=None if counting is None else (counting | extra) - gone,
        )

    def bridge(self, betas: Iterable[str], body: dict[str, Any], counting: bool = False) -> tuple[list[str], dict[str, Any]]:
        """The betas to send and the body without the fields of dropped betas (a copy only when changed)."""
        accepted = self.accepted if not counting or self.count_tokens_accepted is None else self.count_tokens_accepted
        kept: list[str] = []
        dropped: set[str] = set()
        for b in betas:
            name = self.renamed.get(b, b)
            if name in accepted:
                if name not in kept:
                    kept.append(name)
            else:
                dropped.add(b)
        if not dropped:
            return kept, body
        return kept, strip_gated(body, dropped, set(kept))


def strip_gated(body: dict[str, Any], dropped: set[str], kept: set[str]) -> dict[str, Any]:
    """Remove each gated field that one of `dropped` enabled, unless a kept beta enables it too."""
    out = body
    for path, betas in GATED.items():
        if not dropped.intersection(betas) or kept.intersection(betas):
            continue
        out = _remove(out, path, copied=out is not body)
    return out


def _remove(body: dict[str, Any], path: str, copied: bool) -> dict[str, Any]:
    if path.startswith("tools[]."):
        key = path[len("tools[]."):]
        tools = body.get("tools")
        if not isinstance(tools, list) or not any(isinstance(t, dict) and key in t for t in tools):
            return body
        out = body if copied else dict(body)
        out["tools"] = [{k: v for k, v in t.items() if k != key} if isinstance(t, dict) else t for t in tools]
        return out
    head, _, tail = path.partition(".")
    if head not in body:
        return body
    out = body if copied else dict(body)
    if not tail:
        del out[head]
        return out
    inner = out[head]
    if isinstance(inner, dict) and tail in inner:
        rest = {k: v for k, v in inner.items() if k != tail}
        if rest:
            out[head] = rest
        else:
            del out[head]
    return out
