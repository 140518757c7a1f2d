"""Anthropic Message (non-streaming JSON) -> OpenAI `chat.completion` (pure).

- `id` is `chatcmpl-<Anthropic message id>` so logs on both sides can be matched.
- `finish_reason` from `stop_reason` (FINISH_REASONS): end_turn, stop_sequence and pause_turn -> stop
  (OpenAI clients cannot continue a paused server-tool turn), max_tokens and
  model_context_window_exceeded -> length, tool_use -> tool_calls, refusal -> content_filter (with
  `stop_details.explanation`, if any, as `message.refusal`); anything unknown -> stop.
- `content` is all text blocks concatenated, `null` when there is no text block; server-tool blocks and
  citations are dropped.
- Reasoning, emitted only when thinking blocks exist: `reasoning_content` and orq's `reasoning` (all thinking
  text concatenated), `thinking_blocks` (exact blocks, signature included: the lossless form),
  `reasoning_signature` (signature of the last thinking block), `redacted_reasoning` (the data string; a
  list of strings when there are several redacted blocks).
- `usage` (usage_to_openai): prompt_tokens = input + cache read + cache write, completion_tokens = output,
  `prompt_tokens_details.{cached_tokens, cache_write_tokens}`,
  `completion_tokens_details.reasoning_tokens` (Anthropic `output_tokens_details.thinking_tokens`, else 0),
  plus top-level `cache_creation_input_tokens` / `cache_read_input_tokens`.
"""

from __future__ import annotations

from typing import Any

import orjson

from orgate.core.usage import Usage
from orgate.dialects.anthropic.usage import usage_from

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "compaction": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def chat_id(message_id: Any) -> str:
    return f"chatcmpl-{message_id}" if isinstance(message_id, str) and message_id else "chatcmpl-orgate"


def thinking_tokens(raw_usage: Any) -> int:
    details = raw_usage.get("output_tokens_details") if isinstance(raw_usage, dict) else None
    value = details.get("thinking_tokens") if isinstance(details, dict) else None
    return value if isinstance(value, int) else 0


def usage_to_openai(usage: Usage, reasoning_tokens: int = 0) -> dict[str, Any]:
    prompt = usage.prompt_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
    }


def tool_call(block: dict, index: int | None = None) -> dict[str, Any]:
    args = orjson.dumps(block.get("input") or {}).decode()
    call: dict[str, Any] = {
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": args},
    }
    if index is not None:
        call = {"index": index, **call}
    return call


def reasoning_fields(blocks: list[dict]) -> dict[str, Any]:
    """The reasoning extension fields for a list of thinking / redacted_thinking blocks ({} when none)."""
    exact: list[dict] = []
    texts: list[str] = []
    redacted: list[str] = []
    signature = None
    for b in blocks:
        if b.get("type") == "thinking":
            text = b.get("thinking") or ""
            exact.append({"type": "thinking", "thinking": text, "signature": b.get("signature")})
            texts.append(text)
            signature = b.get("signature")
        elif b.get("type") == "redacted_thinking":
            exact.append({"type": "redacted_thinking", "data": b.get("data")})
            redacted.append(b.get("data"))  # type: ignore[arg-type]
    if not exact:
        return {}
    out: dict[str, Any] = {"reasoning_content": "".join(texts), "reasoning": "".join(texts), "thinking_blocks": exact}
    if signature is not None:
        out["reasoning_signature"] = signature
    if redacted:
        out["redacted_reasoning"] = redacted[0] if len(redacted) == 1 else redacted
    return out


def from_anthropic(message: dict, *, model: str, created: int) -> dict:
    """Anthropic Message (non-streaming JSON) -> chat.completion dict. `model` is the name the client asked for."""
    content = [b for b in message.get("content") or [] if isinstance(b, dict)]
    texts = [b.get("text") or "" for b in content if b.get("type") == "text"]
    calls = [tool_call(b) for b in content if b.get("type") == "tool_use"]
    stop_reason = message.get("stop_reason")
    msg: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
    if stop_reason == "refusal":
        details = message.get("stop_details")
        explanation = details.get("explanation") if isinstance(details, dict) else None
        msg["refusal"] = explanation if isinstance(explanation, str) else None
    if calls:
        msg["tool_calls"] = calls
    msg.update(reasoning_fields(content))
    raw_usage = message.get("usage")
    return {
        "id": chat_id(message.get("id")),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": finish_reason(stop_reason)}],
        "usage": usage_to_openai(usage_from(raw_usage), thinking_tokens(raw_usage)),
    }
