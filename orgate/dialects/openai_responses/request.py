"""OpenAI Responses request (`POST /v1/responses`) -> Anthropic Messages request body.

Rules where the spec leaves a choice (see also the package docstring):
- `instructions` and every system/developer message become `system` text blocks, in input order.
- Input items build turns in order; consecutive same-role turns merge; in a user turn tool_result
  blocks move first. Reasoning items are decoded with the envelope and their blocks stay at their
  position in the assistant turn (Claude emits thinking first, so they lead the turn); foreign or
  tampered ones, `web_search_call`, `compaction` and unknown item types are dropped. An assistant turn
  left with only thinking blocks is dropped.
- Tools: `function` -> client tool; `namespace` -> its function/custom tools flattened as
  `<namespace>__<name>`; `custom` (freeform) -> tool with `{input: string}` schema (format text appended
  to the description); `local_shell` -> tool `local_shell` with `{command:[str], workdir, timeout_ms}`;
  hosted tools (`web_search`, `file_search`, `mcp`, ...) are dropped.
- `previous_response_id`, `conversation`, `item_reference` -> 400 (orgate is stateless).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

import orjson

from orgate.dialects.openai_responses.envelope import ReasoningEnvelope
from orgate.errors import InvalidRequest

NS_SEP = "__"
LOCAL_SHELL = "local_shell"
# reasoning.effort -> thinking budget_tokens ("enabled" models) and headroom added to the default max_tokens.
EFFORT_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32768, "max": 32768}
ADAPTIVE_EFFORT = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "max"}
INTERLEAVED_BETA = "interleaved-thinking-2025-05-14"
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_ID_BAD = re.compile(r"[^A-Za-z0-9_-]")
_INPUT_SCHEMA = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}
_SHELL_SCHEMA = {
    "type": "object",
    "properties": {
        "command": {"type": "array", "items": {"type": "string"}},
        "workdir": {"type": "string"},
        "timeout_ms": {"type": "integer"},
    },
    "required": ["command"],
}


@dataclass(frozen=True)
class ResponsesOptions:
    upstream_model: str
    default_max_tokens: int = 4096
    max_output_tokens: int | None = None
    exclusive_temperature_top_p: bool = True
    rejects_sampling_params: bool = False
    thinking_types: tuple[str, ...] = ("enabled",)  # "enabled" (budget_tokens) and/or "adaptive"
    key_id: str = ""  # for the envelope


@dataclass(frozen=True)
class ToolRef:
    """How an Anthropic tool name maps back to the Responses tool the client declared."""

    kind: str  # "function" | "custom" | "local_shell"
    name: str
    namespace: str | None = None


def to_anthropic(body: dict, opts: ResponsesOptions, envelope: ReasoningEnvelope) -> tuple[dict, list[str]]:
    """Responses request -> (Anthropic Messages body with "stream" kept, list of anthropic-beta values)."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    _reject_stateful(body)
    system, messages = _system_and_messages(body, envelope, opts.key_id)
    out: dict[str, Any] = {"model": opts.upstream_model, "messages": messages}
    if system:
        out["system"] = system
    tools = anthropic_tools(body.get("tools"))
    choice = _tool_choice(body, bool(tools))
    if tools:
        out["tools"] = tools
        if choice is not None:
            out["tool_choice"] = choice
    thinking, effort = _thinking(body, opts, choice, messages)
    out["max_tokens"], thinking = _fit_max_tokens(body, opts, thinking, effort)
    output_config = _output_config(body, thinking, effort)
    if thinking is not None:
        out["thinking"] = thinking
    if output_config:
        out["output_config"] = output_config
    out.update(_sampling(body, opts, thinking is not None))
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


# ---------------------------------------------------------------- input items -> system + messages


def _system_and_messages(body: dict, envelope: ReasoningEnvelope, key_id: str) -> tuple[list, list]:
    system: list[dict] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions.strip():
        system.append({"type": "text", "text": instructions})
    raw = body.get("input")
    if isinstance(raw, str):
        raw = [{"type": "message", "role": "user", "content": raw}]
    if not isinstance(raw, list):
        raise InvalidRequest("`input` must be a string or an array of items", param="input")
    turns: list[tuple[str, list[dict]]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidRequest("each input item must be an object", param=f"input[{i}]")
        role, blocks = _item_blocks(item, f"input[{i}]", envelope, key_id)
        if role == "system":
            system.extend(blocks)
        elif blocks:
            turns.append((role, blocks))
    return system, _merge_turns(turns)


def _item_blocks(item: dict, path: str, envelope: ReasoningEnvelope, key_id: str) -> tuple[str, list[dict]]:
    kind = item.get("type") or "message"
    if kind == "message":
        return _message_blocks(item, path)
    if kind == "reasoning":
        token = item.get("encrypted_content")
        blocks = envelope.open(token, key_id=key_id) if isinstance(token, str) else None
        return "assistant", [{**b, "_thinking": True} for b in blocks or []]
    if kind == "function_call":
        name = _req_str(item, "name", path)
        ns = item.get("namespace")
        name = f"{ns}{NS_SEP}{name}" if isinstance(ns, str) and ns else name
        return "assistant", [_tool_use(item, path, name, _parse_arguments(item.get("arguments"), path))]
    if kind == "custom_tool_call":
        raw_input = item.get("input")
        return "assistant", [_tool_use(item, path, _req_str(item, "name", path), {"input": raw_input or ""})]
    if kind == "local_shell_call":
        action = item.get("action") if isinstance(item.get("action"), dict) else {}
        args = {"command": action.get("command") or []}
        if action.get("working_directory"):
            args["workdir"] = action["working_directory"]
        if action.get("timeout_ms") is not None:
            args["timeout_ms"] = action["timeout_ms"]
        return "assistant", [_tool_use(item, path, LOCAL_SHELL, args)]
    if kind in ("function_call_output", "custom_tool_call_output", "local_shell_call_output"):
        return "user", [_tool_result(item, path)]
    if kind == "item_reference":
        raise InvalidRequest("`item_reference` is not supported: orgate is stateless; send the full items", param=path)
    return "user", []  # web_search_call, compaction, other hosted-tool items: not replayable, dropped


def _message_blocks(item: dict, path: str) -> tuple[str, list[dict]]:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise InvalidRequest("message role must be user, assistant, system or developer", param=f"{path}.role")
    content = item.get("content")
    if isinstance(content, str):
        parts: list = [{"type": "input_text", "text": content}]
    elif isinstance(content, list):
        parts = content
    else:
        raise InvalidRequest("message content must be a string or an array", param=f"{path}.content")
    blocks = [b for j, p in enumerate(parts) if (b := _content_part(p, f"{path}.content[{j}]")) is not None]
    if role in ("system", "developer"):
        if any(b["type"] != "text" for b in blocks):
            raise InvalidRequest("system/developer messages may only contain text", param=f"{path}.content")
        return "system", blocks
    if role == "assistant" and any(b["type"] != "text" for b in blocks):
        raise InvalidRequest("assistant messages may only contain text", param=f"{path}.content")
    return role, blocks


def _content_part(part: Any, path: str) -> dict | None:
    if not isinstance(part, dict):
        raise InvalidRequest("content parts must be objects", param=path)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidRequest("text part needs a string `text`", param=f"{path}.text")
        return {"type": "text", "text": text} if text else None
    if kind == "refusal":
        text = part.get("refusal")
        return {"type": "text", "text": text} if isinstance(text, str) and text else None
    if kind == "input_image":
        return _image_block(part, path)
    if kind == "input_file":
        return _file_block(part, path)
    raise InvalidRequest(f"unsupported content part type {kind!r}", param=f"{path}.type")


def _image_block(part: dict, path: str) -> dict:
    url = part.get("image_url")
    if part.get("file_id") and not url:
        raise InvalidRequest("input_image.file_id is not supported; send image_url", param=f"{path}.file_id")
    if not isinstance(url, str) or not url:
        raise InvalidRequest("input_image needs `image_url`", param=f"{path}.image_url")
    if url.startswith("data:"):
        media, data = _data_uri(url, f"{path}.image_url")
        if media not in _IMAGE_TYPES:
            raise InvalidRequest(f"unsupported image type {media!r}", param=f"{path}.image_url")
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequest("image_url must be a data URI or an http(s) URL", param=f"{path}.image_url")


def _file_block(part: dict, path: str) -> dict:
    file_data, file_url = part.get("file_data"), part.get("file_url")
    if isinstance(file_data, str) and file_data:
        media, data = (
            _data_uri(file_data, f"{path}.file_data")
            if file_data.startswith("data:")
            else ("application/pdf", file_data)
        )
        if media == "application/pdf":
            source = {"type": "base64", "media_type": media, "data": data}
        elif media.startswith("text/"):
            try:
                text = base64.b64decode(data, validate=True).decode("utf-8")
            except (binascii.Error, ValueError) as exc:
                raise InvalidRequest(
                    "input_file.file_data is not valid base64 text", param=f"{path}.file_data"
                ) from exc
            source = {"type": "text", "media_type": "text/plain", "data": text}
        else:
            raise InvalidRequest(f"unsupported file type {media!r} (PDF or text only)", param=f"{path}.file_data")
    elif isinstance(file_url, str) and file_url.startswith(("http://", "https://")):
        source = {"type": "url", "url": file_url}
    elif part.get("file_id"):
        raise InvalidRequest("input_file.file_id is not supported; send file_data", param=f"{path}.file_id")
    else:
        raise InvalidRequest("input_file needs `file_data` or `file_url`", param=path)
    block: dict[str, Any] = {"type": "document", "source": source}
    if isinstance(part.get("filename"), str) and part["filename"]:
        block["title"] = part["filename"]
    return block


def _data_uri(uri: str, param: str) -> tuple[str, str]:
    head, sep, data = uri.partition(",")
    if not sep or not head.endswith(";base64"):
        raise InvalidRequest("data URI must be base64-encoded", param=param)
    return head[5:-7].lower(), data


def _tool_use(item: dict, path: str, name: str, args: dict) -> dict:
    return {"type": "tool_use", "id": _tool_id(item, path), "name": name, "input": args}


def _tool_id(item: dict, path: str) -> str:
    call_id = item.get("call_id") or (item.get("id") if item.get("type") == "local_shell_call_output" else None)
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest("`call_id` is required", param=f"{path}.call_id")
    return _ID_BAD.sub("_", call_id)


def _parse_arguments(arguments: Any, path: str) -> dict:
    if arguments in (None, ""):
        return {}
    try:
        args = orjson.loads(arguments) if isinstance(arguments, str) else arguments
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("function_call.arguments is not valid JSON", param=f"{path}.arguments") from exc
    if not isinstance(args, dict):
        raise InvalidRequest("function_call.arguments must encode a JSON object", param=f"{path}.arguments")
    return args


def _tool_result(item: dict, path: str) -> dict:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": _tool_id(item, path)}
    output = item.get("output")
    if isinstance(output, dict):  # lenient: {content, success} payloads
        if output.get("success") is False:
            block["is_error"] = True
        output = output.get("content")
    if isinstance(output, list):
        blocks = [b for j, p in enumerate(output) if (b := _content_part(p, f"{path}.output[{j}]")) is not None]
        if blocks:
            block["content"] = blocks
    elif isinstance(output, str) and output:
        block["content"] = output
    elif output not in (None, ""):
        block["content"] = orjson.dumps(output).decode()
    return block


def _merge_turns(turns: list[tuple[str, list[dict]]]) -> list[dict]:
    merged: list[tuple[str, list[dict]]] = []
    for role, blocks in turns:
        if merged and merged[-1][0] == role:
            merged[-1][1].extend(blocks)
        else:
            merged.append((role, list(blocks)))
    messages: list[dict] = []
    for role, blocks in merged:
        if role == "assistant":
            if all(b.get("_thinking") for b in blocks):
                continue  # reasoning with nothing after it (or all of it dropped): not a replayable turn
            blocks = [{k: v for k, v in b.items() if k != "_thinking"} for b in blocks]
        else:
            blocks = [b for b in blocks if b["type"] == "tool_result"] + [
                b for b in blocks if b["type"] != "tool_result"
            ]
        if messages and messages[-1]["role"] == role:  # neighbours of a dropped turn
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    if not messages:
        raise InvalidRequest("`input` must contain at least one user message", param="input")
    if messages[0]["role"] != "user":
        raise InvalidRequest("the conversation must start with a user message", param="input")
    _rstrip_prefill(messages[-1])
    return messages


def _rstrip_prefill(last: dict) -> None:
    if last["role"] == "assistant" and last["content"] and last["content"][-1]["type"] == "text":
        text = last["content"][-1]["text"].rstrip()
        if text:
            last["content"][-1] = {**last["content"][-1], "text": text}
        else:
            last["content"].pop()


def _req_str(item: dict, field: str, path: str) -> str:
    value = item.get(field)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"`{field}` is required", param=f"{path}.{field}")
    return value


# ---------------------------------------------------------------- tools


def tool_index(tools: Any) -> dict[str, ToolRef]:
    """Anthropic tool name -> the Responses tool it came from (for rendering tool calls back)."""
    index: dict[str, ToolRef] = {}
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict):
            continue
        kind, name = tool.get("type"), tool.get("name")
        if kind in ("function", "custom") and isinstance(name, str):
            index[name] = ToolRef(kind, name)
        elif kind == "local_shell":
            index[LOCAL_SHELL] = ToolRef("local_shell", LOCAL_SHELL)
        elif kind == "namespace" and isinstance(name, str):
            for sub in tool.get("tools") or []:
                if isinstance(sub, dict) and sub.get("type") in ("function", "custom") and sub.get("name"):
                    index[f"{name}{NS_SEP}{sub['name']}"] = ToolRef(sub["type"], sub["name"], name)
    return index


def anthropic_tools(tools: Any) -> list[dict]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidRequest("`tools` must be an array", param="tools")
    out: list[dict] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequest("each tool must be an object", param=f"tools[{i}]")
        kind = tool.get("type")
        if kind == "namespace":
            ns = _req_str(tool, "name", f"tools[{i}]")
            for j, sub in enumerate(tool.get("tools") or []):
                if isinstance(sub, dict) and sub.get("type") in ("function", "custom"):
                    out.append(_one_tool(sub, f"tools[{i}].tools[{j}]", f"{ns}{NS_SEP}"))
        elif kind in ("function", "custom"):
            out.append(_one_tool(tool, f"tools[{i}]", ""))
        elif kind == "local_shell":
            out.append(
                {"name": LOCAL_SHELL, "description": "Run a shell command locally.", "input_schema": _SHELL_SCHEMA}
            )
        # hosted tools (web_search, file_search, mcp, image_generation, ...) are dropped
    return out


def _one_tool(tool: dict, path: str, prefix: str) -> dict:
    name = prefix + _req_str(tool, "name", path)
    desc = tool.get("description") if isinstance(tool.get("description"), str) else ""
    if tool["type"] == "custom":
        fmt = tool.get("format")
        if isinstance(fmt, dict) and fmt.get("type") == "grammar":
            desc = f"{desc}\n\nThe `input` string must follow this {fmt.get('syntax', '')} grammar:\n{fmt.get('definition', '')}"
        schema: dict = _INPUT_SCHEMA
    else:
        schema = tool.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(schema, dict) or schema.get("type", "object") != "object":
            raise InvalidRequest("function parameters must be a JSON Schema object", param=f"{path}.parameters")
        schema = schema if "type" in schema else {"type": "object", **schema}
    out: dict[str, Any] = {"name": name}
    if desc:
        out["description"] = desc
    out["input_schema"] = schema
    if tool.get("strict") is True:
        out["strict"] = True
    return out


def _tool_choice(body: dict, has_tools: bool) -> dict | None:
    tc = body.get("tool_choice")
    parallel = body.get("parallel_tool_calls")
    if tc is None or tc == "auto":
        choice: dict[str, Any] = {"type": "auto"}
    elif tc == "none":
        return {"type": "none"}
    elif tc == "required":
        choice = {"type": "any"}
    elif isinstance(tc, dict) and tc.get("type") in ("function", "custom") and isinstance(tc.get("name"), str):
        ns = tc.get("namespace")
        choice = {"type": "tool", "name": f"{ns}{NS_SEP}{tc['name']}" if ns else tc["name"]}
    elif isinstance(tc, dict) and tc.get("type") == "allowed_tools":
        choice = {"type": "any" if tc.get("mode") == "required" else "auto"}
    elif isinstance(tc, dict):
        choice = {"type": "auto"}  # hosted-tool choices: their tools are dropped
    else:
        raise InvalidRequest("invalid `tool_choice`", param="tool_choice")
    if parallel is False and has_tools:
        choice["disable_parallel_tool_use"] = True
    return choice


# ---------------------------------------------------------------- reasoning, limits, sampling


def _thinking(
    body: dict, opts: ResponsesOptions, choice: dict | None, messages: list
) -> tuple[dict | None, str | None]:
    reasoning = body.get("reasoning")
    if not isinstance(reasoning, dict):
        return None, None
    effort = reasoning.get("effort") or "medium"
    if effort == "none" or effort not in EFFORT_BUDGET:
        return None, None
    if choice is not None and choice["type"] in ("any", "tool"):
        return None, None  # forced tool use is incompatible with thinking: the explicit tool_choice wins
    if messages[-1]["role"] == "assistant" or _tool_loop_without_thinking(messages):
        return None, None
    if "adaptive" in opts.thinking_types:
        thinking: dict[str, Any] = {"type": "adaptive"}
    elif "enabled" in opts.thinking_types:
        thinking = {"type": "enabled", "budget_tokens": EFFORT_BUDGET[effort]}
    else:
        return None, None
    if reasoning.get("summary") in ("auto", "concise", "detailed"):
        thinking["display"] = "summarized"
    return thinking, effort


def _tool_loop_without_thinking(messages: list) -> bool:
    """True when the last assistant turn used tools but its thinking was not replayed (API would 400)."""
    for msg in reversed(messages):
        if msg["role"] == "assistant":
            content = msg["content"]
            uses_tools = any(b["type"] == "tool_use" for b in content)
            return uses_tools and content[0]["type"] not in ("thinking", "redacted_thinking")
    return False


def _fit_max_tokens(
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


def _output_config(body: dict, thinking: dict | None, effort: str | None) -> dict:
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


def _sampling(body: dict, opts: ResponsesOptions, thinking: bool) -> dict:
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
