"""The one thinking policy of both OpenAI dialects (Chat Completions `reasoning_effort`, Responses
`reasoning.effort`): how an OpenAI effort level becomes Anthropic thinking.

Budget-only models (`thinking_types` has "enabled") get `{"type":"enabled","budget_tokens": EFFORT_BUDGET}`:

    effort   minimal  low    medium  high    xhigh   max
    budget   1024     2048   8192    16384   32768   32768

Why these: 1024 is Anthropic's minimum budget; OpenAI's reasoning models spend thousands of reasoning tokens
at "medium" (Codex's default) and tens of thousands at "high", so a client that asks for "high" on either
surface gets the same, comparable depth (the two surfaces used to disagree: 4,096 vs 16,384 for "high").
"max" stays at xhigh's budget: larger budgets exceed most Claude models' output limit and would be halved
anyway. Each surface fits the budget under the request's max_tokens and the model's limit.

Adaptive models (`thinking_types` has "adaptive") get `{"type":"adaptive"}` and `output_config.effort` from
ADAPTIVE_EFFORT (Anthropic has no "minimal": it becomes "low").

Thinking is left out when the request continues a tool loop whose assistant turn does not start with a
thinking block (the client dropped it, as OpenCode and some SDK loops do): with thinking on, Anthropic
rejects such a request (api-reference: the last assistant turn of a tool loop must start with thinking).
"""

from __future__ import annotations

from typing import Any

EFFORT_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32768, "max": 32768}
ADAPTIVE_EFFORT = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "max"}
EFFORTS = frozenset(EFFORT_BUDGET) | {"none"}
THINKING_BLOCKS = ("thinking", "redacted_thinking")


def thinking_for(effort: str, thinking_types: tuple[str, ...]) -> tuple[dict[str, Any] | None, str | None]:
    """(thinking, output_config effort) for an effort level on a model with these thinking types."""
    if effort == "none" or effort not in EFFORT_BUDGET or not thinking_types:
        return None, None
    if "adaptive" in thinking_types:
        return {"type": "adaptive"}, ADAPTIVE_EFFORT[effort]
    if "enabled" in thinking_types:
        return {"type": "enabled", "budget_tokens": EFFORT_BUDGET[effort]}, None
    return None, None


def unsigned_tool_loop(messages: list[dict[str, Any]]) -> bool:
    """True when the request answers the tool calls of an assistant turn that does not start with thinking.

    Only the tool loop in progress matters: once a user turn brings new text, earlier assistant turns'
    thinking is dropped by the API anyway and thinking may be on again.
    """
    if len(messages) < 2 or messages[-1]["role"] != "user" or messages[-2]["role"] != "assistant":
        return False
    user, assistant = messages[-1]["content"], messages[-2]["content"]
    if not user or not isinstance(user[0], dict) or user[0].get("type") != "tool_result":
        return False
    if not any(isinstance(b, dict) and b.get("type") == "tool_use" for b in assistant):
        return False
    return not assistant or assistant[0].get("type") not in THINKING_BLOCKS
