"""Chat request parameters -> Anthropic: max_tokens, thinking / reasoning_effort, sampling, stop, user,
service_tier and response_format (rules in request.py's docstring)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from orgate.dialects.effort import ADAPTIVE_EFFORT, EFFORT_BUDGET, EFFORTS, thinking_for
from orgate.errors import InvalidRequest

JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else: no prose, no markdown code fences."
SERVICE_TIERS = {"auto": "auto", "priority": "auto", "default": "standard_only", "flex": "standard_only"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class ChatOptions:
    upstream_model: str
    default_max_tokens: int = 4096
    max_output_tokens: int | None = None
    exclusive_temperature_top_p: bool = True
    rejects_sampling_params: bool = False
    thinking_types: tuple[str, ...] = ("enabled",)


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def max_tokens_of(body: dict, opts: ChatOptions) -> int:
    value = opts.default_max_tokens
    for key in ("max_completion_tokens", "max_tokens"):
        v = body.get(key)
        if v is None:
            continue
        if not is_int(v) or v < 1:
            raise InvalidRequest(f"{key} must be a positive integer", param=key)
        value = v
        break
    if opts.max_output_tokens is not None:
        value = min(value, opts.max_output_tokens)
    return value


def fit_budget(max_tokens: int, thinking: dict, opts: ChatOptions) -> int:
    budget = thinking["budget_tokens"]
    if max_tokens > budget:
        return max_tokens
    new = budget + max_tokens
    if opts.max_output_tokens is not None:
        new = min(new, opts.max_output_tokens)
    if new <= budget:
        if new // 2 < 1024:
            raise InvalidRequest(
                f"max_tokens ({new}) leaves no room for a thinking budget of at least 1024 tokens",
                param="max_tokens",
            )
        thinking["budget_tokens"] = new // 2  # our own copy, never the client's dict
    return new


def thinking_of(body: dict, opts: ChatOptions) -> tuple[dict | None, str | None]:
    effort = body.get("reasoning_effort")
    if effort is not None and (not isinstance(effort, str) or effort not in EFFORTS):
        raise InvalidRequest(f"reasoning_effort must be one of {sorted(EFFORTS)}", param="reasoning_effort")
    th = body.get("thinking")
    if th is not None:
        return _explicit_thinking(th, effort, opts)
    if effort is None:
        return None, None
    return thinking_for(effort, opts.thinking_types)


def _explicit_thinking(th: Any, effort: str | None, opts: ChatOptions) -> tuple[dict, str | None]:
    kind = th.get("type") if isinstance(th, dict) else None
    if kind not in ("enabled", "adaptive", "disabled"):
        raise InvalidRequest("thinking.type must be enabled, adaptive or disabled", param="thinking.type")
    if kind == "disabled":
        return {"type": "disabled"}, None
    if not opts.thinking_types:
        raise InvalidRequest("thinking is not supported by this model", param="thinking")
    extra = {"display": th["display"]} if "display" in th else {}
    adaptive_effort = ADAPTIVE_EFFORT.get(effort or "")
    if kind == "enabled":
        budget = th.get("budget_tokens")
        if not is_int(budget) or budget < 1024:
            raise InvalidRequest("thinking.budget_tokens must be an integer >= 1024", param="thinking.budget_tokens")
        if "enabled" not in opts.thinking_types:
            return {"type": "adaptive", **extra}, adaptive_effort
        return {"type": "enabled", "budget_tokens": budget, **extra}, None
    if "adaptive" not in opts.thinking_types:
        return {"type": "enabled", "budget_tokens": EFFORT_BUDGET[effort if effort in EFFORT_BUDGET else "high"], **extra}, None
    return {"type": "adaptive", **extra}, adaptive_effort


def apply_sampling(body: dict, out: dict, opts: ChatOptions, thinking_on: bool) -> None:
    t, tp, tk = body.get("temperature"), body.get("top_p"), body.get("top_k")
    if t is not None and (not _is_num(t) or t < 0):
        raise InvalidRequest("temperature must be a number between 0 and 2", param="temperature")
    if tp is not None and (not _is_num(tp) or not 0 <= tp <= 1):
        raise InvalidRequest("top_p must be a number between 0 and 1", param="top_p")
    if tk is not None and (not is_int(tk) or tk < 0):
        raise InvalidRequest("top_k must be a non-negative integer", param="top_k")
    if opts.rejects_sampling_params or thinking_on:
        return
    if opts.exclusive_temperature_top_p and t is not None and tp is not None:
        raise InvalidRequest("temperature and top_p cannot both be specified for this model", param="temperature")
    if t is not None:
        out["temperature"] = t if t <= 1 else 1.0
    if tp is not None:
        out["top_p"] = tp
    if tk is not None:
        out["top_k"] = tk


def apply_stop_user_tier(body: dict, out: dict) -> None:
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise InvalidRequest("stop must be a string or an array of strings", param="stop")
        seqs = [s for s in stop if s.strip()]
        if seqs:
            out["stop_sequences"] = seqs
    user = body.get("user")
    if user is None:
        user = body.get("safety_identifier")
    if user is not None and not isinstance(user, str):
        raise InvalidRequest("user must be a string", param="user")
    if user and not _EMAIL.match(user):
        out["metadata"] = {"user_id": user}
    tier = SERVICE_TIERS.get(body.get("service_tier"))  # type: ignore[arg-type]
    if tier:
        out["service_tier"] = tier


def apply_response_format(body: dict, out: dict) -> bool:
    """Apply response_format; True when a JSON-only system instruction is needed."""
    rf = body.get("response_format")
    if rf is None:
        return False
    kind = rf.get("type") if isinstance(rf, dict) else None
    if kind == "text":
        return False
    if kind == "json_object":
        return True
    if kind == "json_schema":
        js = rf.get("json_schema")
        schema = js.get("schema") if isinstance(js, dict) else None
        if schema is None:
            return True
        if not isinstance(schema, dict):
            raise InvalidRequest(
                "response_format.json_schema.schema must be an object", param="response_format.json_schema.schema"
            )
        out.setdefault("output_config", {})["format"] = {"type": "json_schema", "schema": _closed(schema)}
        return False
    raise InvalidRequest("response_format.type must be text, json_object or json_schema", param="response_format.type")


def _closed(s: Any) -> Any:
    """A copy of a JSON schema with additionalProperties:false on every object schema lacking it."""
    if isinstance(s, list):
        return [_closed(x) for x in s]
    if not isinstance(s, dict):
        return s
    out = {k: _closed(v) for k, v in s.items()}
    t = out.get("type")
    if t == "object" or (isinstance(t, list) and "object" in t):
        out.setdefault("additionalProperties", False)
    return out
