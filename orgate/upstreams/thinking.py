"""Signed thinking blocks when a conversation moves between providers or models: the documented rule.

Claude's thinking signatures are portable across the Claude platforms: a block signed on Anthropic's API
verifies on Bedrock and on Vertex for the same model (Anthropic's extended-thinking docs say so), so a
fallback between `anthropic`, `bedrock` and `vertex` deployments of one model sends the client's blocks
byte for byte and nothing is stripped proactively (stripping would throw away the current tool loop's
reasoning, which Claude needs). A signature can still fail to verify: a fallback or a load-balanced turn
that lands on a *different model* (per-request `fallbacks` naming another model, an alias whose
deployments mix models), or a block the upstream simply refuses.

The rule: when a Claude upstream answers 400 and the error message names a thinking signature, the same
deployment is asked once more without the thinking / redacted_thinking blocks of earlier assistant turns.
For turns before the latest user prompt this loses nothing (the API drops earlier turns' thinking from the
context anyway). If the turn in progress (an assistant tool_use awaiting its tool_result) lost a thinking
block, thinking is switched off for this one request, because with thinking on the API requires that turn
to start with a thinking block. The retry is marked with `x-orgate-repaired` and shows in the ledger's
attempt_log. Any other 400 is the client's and is relayed unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from orgate.errors import UpstreamError
from orgate.upstreams.base import REPAIRED_HEADER, ClaudeUpstream, UpstreamCall, UpstreamResponse

THINKING_BLOCKS = frozenset({"thinking", "redacted_thinking"})


def has_prior_thinking(body: dict[str, Any]) -> bool:
    for m in body.get("messages") or []:
        if isinstance(m, dict) and m.get("role") == "assistant" and isinstance(m.get("content"), list):
            if any(isinstance(b, dict) and b.get("type") in THINKING_BLOCKS for b in m["content"]):
                return True
    return False


def rejects_signature(err: UpstreamError) -> bool:
    """Is this the provider's 400 about a thinking block's signature?"""
    return err.answered and err.status == 400 and "signature" in err.message.lower()


def _last_prompt_index(messages: list[Any]) -> int:
    """Index of the latest user message that is a prompt (not only tool results): the turn in progress starts after it."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if not isinstance(m, dict) or m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str) or not (isinstance(content, list) and content and all(
                isinstance(b, dict) and b.get("type") == "tool_result" for b in content)):
            return i
    return -1


def strip_thinking(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of `body` without earlier assistant turns' thinking blocks (inputs are not mutated)."""
    messages = list(body.get("messages") or [])
    in_progress = _last_prompt_index(messages)
    lost_current = False
    out: list[Any] = []
    for i, m in enumerate(messages):
        if isinstance(m, dict) and m.get("role") == "assistant" and isinstance(m.get("content"), list):
            kept = [b for b in m["content"] if not (isinstance(b, dict) and b.get("type") in THINKING_BLOCKS)]
            if len(kept) != len(m["content"]):
                lost_current = lost_current or i > in_progress
                if not kept:
                    continue  # a turn of nothing but thinking: consecutive user turns are merged by the API
                m = {**m, "content": kept}
        out.append(m)
    new = {**body, "messages": out}
    thinking = new.get("thinking")
    if lost_current and isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        new.pop("thinking")
    return new


class SignatureRepair:
    """Wraps a Claude upstream with the rule above."""

    def __init__(self, inner: ClaudeUpstream) -> None:
        self.inner = inner
        self.name = inner.name

    async def messages(self, call: UpstreamCall) -> UpstreamResponse:
        try:
            return await self.inner.messages(call)
        except UpstreamError as e:
            if not rejects_signature(e) or not has_prior_thinking(call.json()):
                raise
        retry = dataclasses.replace(call, body=strip_thinking(call.json()), raw_body=None)
        again = await self.inner.messages(retry)
        again.headers[REPAIRED_HEADER] = "thinking signature rejected; earlier thinking blocks removed"
        return again

    async def count_tokens(self, call: UpstreamCall) -> UpstreamResponse:
        return await self.inner.count_tokens(call)

    async def aclose(self) -> None:
        await self.inner.aclose()
