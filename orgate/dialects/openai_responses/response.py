"""Anthropic Message -> OpenAI Responses `response` object, and the pieces the stream encoder shares.

Content is walked in order: a run of thinking/redacted_thinking blocks becomes one `reasoning` item
(summary parts only when the request asked for `reasoning.summary`; `encrypted_content` always sealed
with the envelope so the next stateless turn can replay the signed blocks), a run of text blocks one
`message` item (one `output_text` part per block), each `tool_use` one `function_call` (or
`custom_tool_call` / `local_shell_call` when the client declared that kind of tool; namespace tools come
back as `name` + `namespace`). Server-tool blocks are skipped. `max_tokens` /
`model_context_window_exceeded` -> status `incomplete` (reason `max_output_tokens`); `refusal` ->
`incomplete` (reason `content_filter`).
"""

from __future__ import annotations

from typing import Any

import orjson

from orgate.core.usage import Usage
from orgate.dialects.anthropic.usage import usage_from
from orgate.dialects.openai_responses.envelope import ReasoningEnvelope
from orgate.dialects.openai_responses.tools import ToolRef, tool_index

_INCOMPLETE = {
    "max_tokens": "max_output_tokens",
    "model_context_window_exceeded": "max_output_tokens",
    "refusal": "content_filter",
}


def from_anthropic(
    message: dict, *, model: str, created: int, envelope: ReasoningEnvelope, key_id: str, request: dict
) -> dict:
    """Anthropic Message -> Responses `response` object (object:"response", status, output items, usage...)."""
    base = id_base(message.get("id"))
    ids = ItemIds(base)
    tools = tool_index(request.get("tools"))
    summaries = wants_summary(request)
    output: list[dict] = []
    run: list[dict] = []  # current thinking run
    for block in message.get("content") or []:
        kind = block.get("type")
        if kind in ("thinking", "redacted_thinking"):
            run.append(block)
            continue
        if run:
            output.append(reasoning_item(ids.next("rs"), run, envelope, key_id, summaries))
            run = []
        if kind == "text":
            part = output_text(block.get("text") or "")
            if output and output[-1]["type"] == "message" and output[-1].get("_open"):
                output[-1]["content"].append(part)
            else:
                output.append({**message_item(ids.next("msg"), "completed"), "content": [part], "_open": True})
        elif kind == "tool_use":
            output.append(tool_call_item(ids.next("fc"), block, tools, "completed"))
    if run:
        output.append(reasoning_item(ids.next("rs"), run, envelope, key_id, summaries))
    for item in output:
        item.pop("_open", None)
    usage = message.get("usage")
    status, details = final_status(message.get("stop_reason"))
    return response_object(
        "resp_" + base,
        model=model,
        created=created,
        request=request,
        status=status,
        output=output,
        usage=usage_object(usage_from(usage), thinking_tokens(usage)),
        incomplete_details=details,
    )


# ---------------------------------------------------------------- shared with the stream encoder


def id_base(message_id: Any) -> str:
    if isinstance(message_id, str) and message_id:
        return message_id[4:] if message_id.startswith("msg_") else message_id
    return "0"


class ItemIds:
    """Output item ids: `<prefix>_<base>_<n>`, unique within one response."""

    __slots__ = ("_base", "_n")

    def __init__(self, base: str) -> None:
        self._base, self._n = base, 0

    def next(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._base}_{self._n}"


def wants_summary(request: dict) -> bool:
    reasoning = request.get("reasoning")
    return isinstance(reasoning, dict) and (
        reasoning.get("summary") in ("auto", "concise", "detailed")
        or reasoning.get("generate_summary") in ("auto", "concise", "detailed")
    )


def reasoning_item(item_id: str, blocks: list[dict], envelope: ReasoningEnvelope, key_id: str, summaries: bool) -> dict:
    clean = [_clean_thinking(b) for b in blocks]
    summary = [
        {"type": "summary_text", "text": b["thinking"]}
        for b in clean
        if summaries and b["type"] == "thinking" and b.get("thinking")
    ]
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": summary,
        "encrypted_content": envelope.seal(clean, key_id=key_id),
    }


def _clean_thinking(block: dict) -> dict:
    if block.get("type") == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.get("data", "")}
    return {"type": "thinking", "thinking": block.get("thinking", ""), "signature": block.get("signature", "")}


def message_item(item_id: str, status: str) -> dict:
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": []}


def output_text(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": []}


def tool_call_item(
    item_id: str, block: dict, tools: dict[str, ToolRef], status: str, raw_args: str | None = None
) -> dict:
    """Render a finished (or, with status in_progress and raw_args "", a starting) tool_use block."""
    name = block.get("name") or ""
    ref = tools.get(name) or ToolRef("function", name)
    args = block.get("input") if isinstance(block.get("input"), dict) else {}
    call_id = block.get("id") or ""
    if ref.kind == "custom":
        text = args.get("input")
        item = {
            "id": item_id.replace("fc_", "ctc_", 1),
            "type": "custom_tool_call",
            "status": status,
            "call_id": call_id,
            "name": ref.name,
            "input": text if isinstance(text, str) else ("" if text is None else orjson.dumps(text).decode()),
        }
    elif ref.kind == "local_shell":
        item = {
            "id": item_id.replace("fc_", "lsh_", 1),
            "type": "local_shell_call",
            "status": status,
            "call_id": call_id,
            "action": shell_action(args),
        }
    else:
        arguments = raw_args if raw_args is not None else orjson.dumps(args).decode()
        item = {
            "id": item_id,
            "type": "function_call",
            "status": status,
            "call_id": call_id,
            "name": ref.name,
            "arguments": arguments,
        }
    if ref.namespace:
        item["namespace"] = ref.namespace
    return item


def shell_action(args: dict) -> dict:
    command = args.get("command")
    if isinstance(command, str):
        command = [command]
    return {
        "type": "exec",
        "command": [str(c) for c in command or []],
        "timeout_ms": args.get("timeout_ms"),
        "working_directory": args.get("workdir"),
        "env": {},
        "user": None,
    }


def final_status(stop_reason: Any) -> tuple[str, dict | None]:
    reason = _INCOMPLETE.get(stop_reason) if isinstance(stop_reason, str) else None
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def thinking_tokens(usage: Any) -> int:
    details = usage.get("output_tokens_details") if isinstance(usage, dict) else None
    value = details.get("thinking_tokens") if isinstance(details, dict) else None
    return value if isinstance(value, int) else 0


def usage_object(usage: Usage, reasoning_tokens: int) -> dict:
    prompt = usage.prompt_tokens
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": prompt + usage.output_tokens,
    }


def response_object(
    response_id: str,
    *,
    model: str,
    created: int,
    request: dict,
    status: str,
    output: list[dict],
    usage: dict | None,
    incomplete_details: dict | None = None,
    error: dict | None = None,
) -> dict:
    """The full `response` object, echoing the request's settings like OpenAI does."""
    reasoning = request.get("reasoning")
    text = request.get("text")
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": incomplete_details,
        "instructions": request.get("instructions") if isinstance(request.get("instructions"), str) else None,
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls") is not False,
        "previous_response_id": None,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")}
        if isinstance(reasoning, dict)
        else None,
        "store": False,
        "temperature": request.get("temperature"),
        "text": {"format": text.get("format") or {"type": "text"}}
        if isinstance(text, dict)
        else {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": request.get("tools") if isinstance(request.get("tools"), list) else [],
        "top_p": request.get("top_p"),
        "truncation": "disabled",
        "usage": usage,
        "metadata": request.get("metadata") if isinstance(request.get("metadata"), dict) else {},
    }
