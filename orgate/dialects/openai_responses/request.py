"""OpenAI Responses request (`POST /v1/responses`) -> Anthropic Messages request body.

Rules where the spec leaves a choice (see also the package docstring):
- `instructions` and every system/developer message become `system` text blocks, in input order.
- Input items build turns in order; consecutive same-role turns merge; in a user turn tool_result
  blocks move first. Reasoning items are decoded with the envelope and their blocks stay at their
  position in the assistant turn (Claude emits thinking first, so they lead the turn); a `compaction`
  item orgate sealed becomes a user turn with its summary (compaction.py); foreign or tampered ones,
  `web_search_call` and unknown item types are dropped. An assistant turn
  left with only thinking blocks is dropped.
- Tools: `function` -> client tool; `namespace` -> its function/custom tools flattened as
  `<namespace>__<name>`; `custom` (freeform) -> tool with `{input: string}` schema (format text appended
  to the description); `local_shell` -> tool `local_shell` with `{command:[str], workdir, timeout_ms}`;
  hosted tools (`web_search`, `file_search`, `mcp`, ...) are dropped.
- `previous_response_id` -> 400 here; with the response store on, server/response_store.py puts the stored
  conversation in `input` first. `conversation`, `item_reference` -> 400 (orgate keeps no conversations).
"""

from __future__ import annotations

from typing import Any

from orgate.dialects.openai_responses.envelope import ReasoningEnvelope
from orgate.dialects.openai_responses.items import system_and_messages
from orgate.dialects.openai_responses.params import (
    INTERLEAVED_BETA,
    ResponsesOptions,
    fit_max_tokens,
    output_config_of,
    sampling_of,
    thinking_of,
)
from orgate.dialects.openai_responses.tools import ToolRef, anthropic_tools, tool_choice_of, tool_index
from orgate.errors import InvalidRequest

__all__ = ["ResponsesOptions", "ToolRef", "anthropic_tools", "to_anthropic", "tool_index"]


def to_anthropic(body: dict, opts: ResponsesOptions, envelope: ReasoningEnvelope) -> tuple[dict, list[str]]:
    """Responses request -> (Anthropic Messages body with "stream" kept, list of anthropic-beta values)."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    _reject_stateful(body)
    system, messages = system_and_messages(body, envelope, opts.key_id)
    out: dict[str, Any] = {"model": opts.upstream_model, "messages": messages}
    if system:
        out["system"] = system
    tools = anthropic_tools(body.get("tools"))
    choice = tool_choice_of(body, bool(tools))
    if tools:
        out["tools"] = tools
        if choice is not None:
            out["tool_choice"] = choice
    thinking, effort = thinking_of(body, opts, choice, messages)
    out["max_tokens"], thinking = fit_max_tokens(body, opts, thinking, effort)
    output_config = output_config_of(body, thinking, effort)
    if thinking is not None:
        out["thinking"] = thinking
    if output_config:
        out["output_config"] = output_config
    out.update(sampling_of(body, opts, thinking is not None))
    user = body.get("safety_identifier") or body.get("user")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    if "stream" in body:
        out["stream"] = bool(body["stream"])
    betas = [INTERLEAVED_BETA] if thinking and thinking["type"] == "enabled" and tools else []
    return out, betas


def _reject_stateful(body: dict) -> None:
    for field in ("previous_response_id", "conversation"):
        if body.get(field):
            raise InvalidRequest(
                f"`{field}` is not supported: orgate is stateless; send the full conversation in `input` "
                "with `store: false`",
                param=field,
            )
