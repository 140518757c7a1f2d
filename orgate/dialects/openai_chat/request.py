"""OpenAI Chat Completions request -> Anthropic Messages request (pure; never mutates its input).

Rules where the specs leave a choice (each is covered by a test):

- Unknown and OpenAI-only fields are ignored, never forwarded: `metadata`, `seed`, `logprobs`,
  `top_logprobs`, `logit_bias`, `presence_penalty`, `frequency_penalty`, `modalities`, `audio`,
  `prediction`, `store`, `verbosity`, `prompt_cache_key`, `prompt_cache_retention`,
  `prompt_cache_options`, `web_search_options`, `functions`, router extensions such as `orq` or
  `fallbacks`, and any other key this module does not read. `stream_options` is the caller's business.
- `n` other than 1 is a 400 (param `n`); audio parts and OpenAI `custom` (freeform) tools are 400s.
- `max_completion_tokens` wins over `max_tokens`; neither -> `opts.default_max_tokens`; then clamped to
  `opts.max_output_tokens`. With `thinking.type:"enabled"` and `max_tokens <= budget_tokens`,
  `max_tokens` becomes `budget + max_tokens` (the client's number is kept as visible-output room),
  clamped again; if the clamp leaves no room the budget shrinks to half of `max_tokens` (>= 1024) or 400.
- Sampling: `temperature` is clamped to [0, 1] (negative -> 400). `temperature`/`top_p`/`top_k` are
  dropped silently when the model rejects them or thinking is on (enabled/adaptive); only when they would
  really be sent does `exclusive_temperature_top_p` turn "both given" into a 400.
- `reasoning_effort`: `none` -> no thinking. Models with "adaptive" in `thinking_types` get
  `{"type":"adaptive"}` + `output_config.effort` (minimal->low, xhigh and max kept); budget-only models get
  `{"type":"enabled","budget_tokens": EFFORT_BUDGET[effort]}` (dialects/effort.py). Ignored silently when `thinking_types` is empty.
  A top-level `thinking` wins; `enabled` becomes `adaptive` (budget dropped, `display` kept) on
  adaptive-only models, `adaptive` becomes `enabled` with the effort's budget (default high) on budget-only
  models, and `reasoning_effort` then only supplies `output_config.effort` for adaptive thinking.
  An explicit enabled/adaptive `thinking` on a model without thinking is a 400.
- `response_format`: `text` -> nothing; `json_schema` -> `output_config.format` with
  `additionalProperties:false` added to every object schema lacking it (Anthropic requires it); a
  `json_schema` without `schema`, and `json_object`, append `JSON_OBJECT_INSTRUCTION` as the last system
  text block (no native equivalent; a forced tool would break thinking and streamed text).
- `user` (else `safety_identifier`) -> `metadata.user_id`, dropped when it looks like an e-mail address.
- `service_tier`: auto/priority -> "auto", default/flex -> "standard_only", others ignored.
- `tool_choice` without any tools is dropped; `parallel_tool_calls:false` adds
  `disable_parallel_tool_use:true` (on a new `{"type":"auto"}` if needed; never on `none`).
- Messages: system/developer anywhere are hoisted, one block per message or text part, in order.
  Whitespace-only text is never sent. Consecutive same-role turns are merged, and inside a user turn
  the `tool_result` blocks are moved (stably) before everything else. A message-level `cache_control`
  lands on that message's last block. An assistant message with nothing left is dropped; the final
  assistant turn (prefill) has its trailing whitespace stripped. A user message with no content is a 400.
- Tool call ids outside `[A-Za-z0-9_-]` have the other characters replaced by `_` in both `tool_use.id`
  and `tool_result.tool_use_id`, so pairs stay paired.
- Raw base64 `file_data` (no data: prefix) is taken as a PDF; `file_id` becomes a Files-API document
  source and adds the `files-api-2025-04-14` beta. `text/plain` data becomes a plain-text document.
- Thinking is left out (with its effort) when the request continues a tool loop whose last assistant turn
  has no thinking block (the client dropped it, as OpenCode does): Anthropic rejects such a request.
- Legacy `function_call` / role `function` become tool_use / tool_result with id `call_<name>_<i>`.
"""

from __future__ import annotations

from typing import Any

from orgate.dialects.effort import unsigned_tool_loop
from orgate.dialects.openai_chat.messages import FILES_BETA, convert_messages
from orgate.dialects.openai_chat.params import (
    JSON_OBJECT_INSTRUCTION,
    ChatOptions,
    apply_response_format,
    apply_sampling,
    apply_stop_user_tier,
    fit_budget,
    is_int,
    max_tokens_of,
    thinking_of,
)
from orgate.dialects.openai_chat.tools import apply_tools
from orgate.errors import InvalidRequest

__all__ = ["FILES_BETA", "JSON_OBJECT_INSTRUCTION", "ChatOptions", "to_anthropic"]


def to_anthropic(body: dict, opts: ChatOptions) -> tuple[dict, list[str]]:
    """OpenAI chat request -> (Anthropic Messages request body, anthropic-beta values needed)."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    n = body.get("n")
    if n is not None and (not is_int(n) or n != 1):
        raise InvalidRequest("n must be 1: only one choice per request is supported", param="n")
    betas: list[str] = []
    system, messages = convert_messages(body.get("messages"), betas)
    out: dict[str, Any] = {"model": opts.upstream_model, "max_tokens": max_tokens_of(body, opts)}
    if isinstance(body.get("stream"), bool):
        out["stream"] = body["stream"]
    thinking, effort = thinking_of(body, opts)
    if thinking is not None and thinking["type"] != "disabled" and unsigned_tool_loop(messages):
        thinking, effort = None, None
    if thinking is not None:
        out["thinking"] = thinking
        if thinking["type"] == "enabled":
            out["max_tokens"] = fit_budget(out["max_tokens"], thinking, opts)
    if effort:
        out["output_config"] = {"effort": effort}
    apply_sampling(body, out, opts, thinking is not None and thinking["type"] != "disabled")
    apply_stop_user_tier(body, out)
    apply_tools(body, out)
    if apply_response_format(body, out):
        system.append({"type": "text", "text": JSON_OBJECT_INSTRUCTION})
    if system:
        out["system"] = system
    out["messages"] = messages
    return out, betas

