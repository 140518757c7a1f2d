"""Responses reasoning / max_output_tokens / text.format / sampling -> Anthropic thinking, max_tokens,
output_config and sampling parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orgate.dialects.effort import ADAPTIVE_EFFORT, EFFORT_BUDGET, thinking_for, unsigned_tool_loop
from orgate.errors import InvalidRequest

INTERLEAVED_BETA = "interleaved-thinking-2025-05-14"


@dataclass(frozen=True)
class ResponsesOptions:
    upstream_model: str
    default_max_tokens: int = 4096
    max_output_tokens: int | None = None
    exclusive_temperature_top_p: bool = True
    rejects_sampling_params: bool = False
    thinking_types: tuple[str, ...] = ("enabled",)  # "enabled" (budget_tokens) and/or "adaptive"
    key_id: str = ""  # for the envelope


def thinking_of(
    body: dict, opts: ResponsesOptions, choice: dict | None, messages: list
) -> tuple[dict | None, str | None]:
    reasoning = body.get("reasoning")
    if not isinstance(reasoning, dict):
        return None, None
    effort = reasoning.get("effort") or "medium"
    if not isinstance(effort, str):
        raise InvalidRequest("reasoning.effort must be a string", param="reasoning.effort")
    if effort == "none" or effort not in EFFORT_BUDGET:
        return None, None
    if choice is not None and choice["type"] in ("any", "tool"):
        return None, None  # forced tool use is incompatible with thinking: the explicit tool_choice wins
    if messages[-1]["role"] == "assistant" or unsigned_tool_loop(messages):
        return None, None  # a prefill, or a tool loop whose thinking the client dropped
    thinking, _ = thinking_for(effort, opts.thinking_types)
    if thinking is None:
        return None, None
    if reasoning.get("summary") in ("auto", "concise", "detailed"):
        thinking["display"] = "summarized"  # our own dict: thinking_for builds a new one
    return thinking, effort


def fit_max_tokens(
    body: dict, opts: ResponsesOptions, thinking: dict | None, effort: str | None
) -> tuple[int, dict | None]:
    """max_tokens: the client's max_output_tokens, else the default plus the effort's thinking headroom;
    capped by the model limit. A budget that doesn't fit is halved; under 1024 thinking is dropped."""
    requested = body.get("max_output_tokens")
    if requested is not None and (not isinstance(requested, int) or isinstance(requested, bool) or requested < 1):
        raise InvalidRequest("`max_output_tokens` must be a positive integer", param="max_output_tokens")
    headroom = EFFORT_BUDGET[effort] if thinking is not None and effort else 0
    max_tokens = requested if requested is not None else opts.default_max_tokens + headroom
    if opts.max_output_tokens is not None:
        max_tokens = min(max_tokens, opts.max_output_tokens)
    if thinking is not None and thinking["type"] == "enabled" and thinking["budget_tokens"] >= max_tokens:
        budget = max_tokens // 2
        thinking = {**thinking, "budget_tokens": budget} if budget >= 1024 else None
    return max_tokens, thinking


def output_config_of(body: dict, thinking: dict | None, effort: str | None) -> dict:
    config: dict[str, Any] = {}
    if thinking is not None and thinking["type"] == "adaptive" and effort:
        config["effort"] = ADAPTIVE_EFFORT[effort]
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise InvalidRequest("text.format.schema must be an object", param="text.format.schema")
        config["format"] = {"type": "json_schema", "schema": schema}
    return config


def sampling_of(body: dict, opts: ResponsesOptions, thinking: bool) -> dict:
    if opts.rejects_sampling_params:
        return {}
    out: dict[str, Any] = {}
    temperature, top_p = body.get("temperature"), body.get("top_p")
    if isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and not thinking:
        out["temperature"] = min(max(float(temperature), 0.0), 1.0)
    if isinstance(top_p, (int, float)) and not isinstance(top_p, bool):
        if not thinking or 0.95 <= top_p <= 1:
            out["top_p"] = float(top_p)
    if opts.exclusive_temperature_top_p and "temperature" in out and "top_p" in out:
        del out["top_p"]
    return out
