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
  `{"type":"enabled","budget_tokens": BUDGETS[effort]}`. Ignored silently when `thinking_types` is empty.
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

import base64
import binascii
import copy
import re
from dataclasses import dataclass
from typing import Any

import orjson

from orgate.errors import InvalidRequest

FILES_BETA = "files-api-2025-04-14"
BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192, "max": 16384}
ADAPTIVE_EFFORT = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "max"}
EFFORTS = frozenset(BUDGETS) | {"none"}
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else: no prose, no markdown code fences."
# Anthropic content blocks accepted verbatim inside OpenAI content arrays.
NATIVE_BLOCKS = frozenset(
    {
        "image",
        "document",
        "search_result",
        "tool_result",
        "tool_use",
        "container_upload",
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "mid_conv_system",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "compaction",
        "tool_reference",
    }
)
REASONING_PARTS = frozenset({"thinking", "reasoning", "redacted_thinking", "redacted_reasoning"})
SERVICE_TIERS = {"auto": "auto", "priority": "auto", "default": "standard_only", "flex": "standard_only"}
_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_BAD_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_DATA_URI = re.compile(r"^data:([^;,]+)((?:;[^;,]*)*),(.*)$", re.DOTALL)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class ChatOptions:
    upstream_model: str
    default_max_tokens: int = 4096
    max_output_tokens: int | None = None
    exclusive_temperature_top_p: bool = True
    rejects_sampling_params: bool = False
    thinking_types: tuple[str, ...] = ("enabled",)


def to_anthropic(body: dict, opts: ChatOptions) -> tuple[dict, list[str]]:
    """OpenAI chat request -> (Anthropic Messages request body, anthropic-beta values needed)."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    n = body.get("n")
    if n is not None and (not _is_int(n) or n != 1):
        raise InvalidRequest("n must be 1: only one choice per request is supported", param="n")
    betas: list[str] = []
    system, messages = _convert_messages(body.get("messages"), betas)
    out: dict[str, Any] = {"model": opts.upstream_model, "max_tokens": _max_tokens(body, opts)}
    if isinstance(body.get("stream"), bool):
        out["stream"] = body["stream"]
    thinking, effort = _thinking(body, opts)
    if thinking is not None and thinking["type"] != "disabled" and _unsigned_tool_loop(messages):
        thinking, effort = None, None
    if thinking is not None:
        out["thinking"] = thinking
        if thinking["type"] == "enabled":
            out["max_tokens"] = _fit_budget(out["max_tokens"], thinking, opts)
    if effort:
        out["output_config"] = {"effort": effort}
    _sampling(body, out, opts, thinking is not None and thinking["type"] != "disabled")
    _stop_user_tier(body, out)
    _tools(body, out)
    if _response_format(body, out):
        system.append({"type": "text", "text": JSON_OBJECT_INSTRUCTION})
    if system:
        out["system"] = system
    out["messages"] = messages
    return out, betas


# ---------------------------------------------------------------- parameters


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _max_tokens(body: dict, opts: ChatOptions) -> int:
    value = opts.default_max_tokens
    for key in ("max_completion_tokens", "max_tokens"):
        v = body.get(key)
        if v is None:
            continue
        if not _is_int(v) or v < 1:
            raise InvalidRequest(f"{key} must be a positive integer", param=key)
        value = v
        break
    if opts.max_output_tokens is not None:
        value = min(value, opts.max_output_tokens)
    return value


def _unsigned_tool_loop(messages: list[dict]) -> bool:
    """True when the request answers tool calls of an assistant turn that does not start with thinking."""
    if len(messages) < 2 or messages[-1]["role"] != "user" or messages[-2]["role"] != "assistant":
        return False
    if messages[-1]["content"][0].get("type") != "tool_result":
        return False
    return messages[-2]["content"][0].get("type") not in ("thinking", "redacted_thinking")


def _fit_budget(max_tokens: int, thinking: dict, opts: ChatOptions) -> int:
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


def _thinking(body: dict, opts: ChatOptions) -> tuple[dict | None, str | None]:
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in EFFORTS:
        raise InvalidRequest(f"reasoning_effort must be one of {sorted(EFFORTS)}", param="reasoning_effort")
    th = body.get("thinking")
    if th is not None:
        return _explicit_thinking(th, effort, opts)
    if effort in (None, "none") or not opts.thinking_types:
        return None, None
    if "adaptive" in opts.thinking_types:
        return {"type": "adaptive"}, ADAPTIVE_EFFORT[effort]
    return {"type": "enabled", "budget_tokens": BUDGETS[effort]}, None


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
        if not _is_int(budget) or budget < 1024:
            raise InvalidRequest("thinking.budget_tokens must be an integer >= 1024", param="thinking.budget_tokens")
        if "enabled" not in opts.thinking_types:
            return {"type": "adaptive", **extra}, adaptive_effort
        return {"type": "enabled", "budget_tokens": budget, **extra}, None
    if "adaptive" not in opts.thinking_types:
        return {"type": "enabled", "budget_tokens": BUDGETS.get(effort or "high", 4096), **extra}, None
    return {"type": "adaptive", **extra}, adaptive_effort


def _sampling(body: dict, out: dict, opts: ChatOptions, thinking_on: bool) -> None:
    t, tp, tk = body.get("temperature"), body.get("top_p"), body.get("top_k")
    if t is not None and (not _is_num(t) or t < 0):
        raise InvalidRequest("temperature must be a number between 0 and 2", param="temperature")
    if tp is not None and (not _is_num(tp) or not 0 <= tp <= 1):
        raise InvalidRequest("top_p must be a number between 0 and 1", param="top_p")
    if tk is not None and (not _is_int(tk) or tk < 0):
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


def _stop_user_tier(body: dict, out: dict) -> None:
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


def _response_format(body: dict, out: dict) -> bool:
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


def _tools(body: dict, out: dict) -> None:
    raw = body.get("tools")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise InvalidRequest("tools must be an array", param="tools")
    tools = [_tool(t, f"tools[{k}]") for k, t in enumerate(raw)]
    choice = _tool_choice(body.get("tool_choice"))
    if choice and choice.get("type") == "allowed_tools":
        names = choice["names"]
        tools = [t for t in tools if t.get("name") in names]
        choice = {"type": choice["mode"]}
    if not tools:
        return
    out["tools"] = tools
    if body.get("parallel_tool_calls") is False:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    if choice:
        out["tool_choice"] = choice


def _tool(tool: Any, p: str) -> dict:
    if not isinstance(tool, dict):
        raise InvalidRequest(f"{p} must be an object", param=p)
    kind = tool.get("type")
    fn = tool.get("function")
    if kind == "function" and isinstance(fn, dict):
        name = fn.get("name")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise InvalidRequest(f"{p}.function.name must match ^[a-zA-Z0-9_-]{{1,128}}$", param=f"{p}.function.name")
        params = fn.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise InvalidRequest(f"{p}.function.parameters must be an object", param=f"{p}.function.parameters")
        schema = copy.deepcopy(params) if params else {"type": "object", "properties": {}}
        schema.setdefault("type", "object")
        block: dict[str, Any] = {"name": name}
        if isinstance(fn.get("description"), str) and fn["description"]:
            block["description"] = fn["description"]
        block["input_schema"] = schema
        if fn.get("strict") is True:
            block["strict"] = True
        cc = tool.get("cache_control") or fn.get("cache_control")
        if cc:
            block["cache_control"] = copy.deepcopy(cc)
        return block
    if "input_schema" in tool or (isinstance(kind, str) and kind not in ("function", "custom")):
        return copy.deepcopy(tool)  # already Anthropic-shaped (client or server tool)
    raise InvalidRequest(f"unsupported tool type {kind!r}: only function tools are supported", param=f"{p}.type")


def _tool_choice(tc: Any) -> dict | None:
    simple = {"auto": "auto", "none": "none", "required": "any"}
    if tc is None:
        return None
    if isinstance(tc, str) and tc in simple:
        return {"type": simple[tc]}
    kind = tc.get("type") if isinstance(tc, dict) else None
    if kind == "function" and isinstance(tc.get("function"), dict) and isinstance(tc["function"].get("name"), str):
        return {"type": "tool", "name": tc["function"]["name"]}
    if kind == "allowed_tools" and isinstance(tc.get("allowed_tools"), dict):
        at = tc["allowed_tools"]
        names = {
            (t.get("function") or {}).get("name") or t.get("name") for t in at.get("tools") or [] if isinstance(t, dict)
        }
        if at.get("mode", "auto") in simple:
            return {"type": "allowed_tools", "mode": simple[at.get("mode", "auto")], "names": names}
    if kind in ("auto", "any", "none") or (kind == "tool" and isinstance(tc.get("name"), str)):
        return copy.deepcopy(tc)  # already Anthropic-shaped
    raise InvalidRequest(
        'tool_choice must be "auto", "none", "required" or {"type":"function",...}', param="tool_choice"
    )


# ---------------------------------------------------------------- messages


def _convert_messages(raw: Any, betas: list[str]) -> tuple[list[dict], list[dict]]:
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("messages must be a non-empty array", param="messages")
    system: list[dict] = []
    turns: list[dict] = []
    legacy: dict[str, str] = {}  # function name -> id of its last legacy function_call
    for i, msg in enumerate(raw):
        p = f"messages[{i}]"
        role = msg.get("role") if isinstance(msg, dict) else None
        if role in ("system", "developer"):
            system.extend(_text_only(msg, p))
            continue
        if role == "user":
            blocks = _user_blocks(msg, p, betas)
            if not blocks:
                raise InvalidRequest(f"{p}.content must not be empty", param=f"{p}.content")
        elif role == "assistant":
            blocks = _assistant_blocks(msg, p, i, legacy)
        elif role == "tool":
            blocks = [_tool_result(msg, p, betas, msg.get("tool_call_id"), "tool_call_id")]
        elif role == "function":
            fn_name = msg.get("name")
            call_id = legacy.get(fn_name) if isinstance(fn_name, str) else None
            blocks = [_tool_result(msg, p, betas, call_id, "name")]
        else:
            raise InvalidRequest(f"{p}.role must be system, developer, user, assistant or tool", param=f"{p}.role")
        _mark_last(blocks, msg.get("cache_control"))
        kind = "assistant" if role == "assistant" else "user"
        if not blocks:
            continue
        if turns and turns[-1]["role"] == kind:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": kind, "content": blocks})
    if not turns:
        raise InvalidRequest("messages must contain at least one user or assistant message", param="messages")
    return system, _finalize(turns)


def _finalize(turns: list[dict]) -> list[dict]:
    for turn in turns:
        if turn["role"] == "user":  # tool_result blocks must open the user turn
            c = turn["content"]
            turn["content"] = [b for b in c if b.get("type") == "tool_result"] + [
                b for b in c if b.get("type") != "tool_result"
            ]
    last = turns[-1]
    if last["role"] == "assistant":  # prefill: trailing whitespace is rejected upstream
        c = last["content"]
        if c and c[-1].get("type") == "text":
            text = c[-1]["text"].rstrip()
            c[-1] = {**c[-1], "text": text} if text else None
            last["content"] = [b for b in c if b is not None]
        if not last["content"]:
            turns.pop()
    return turns


def _mark_last(blocks: list[dict], cc: Any) -> None:
    if cc and blocks and blocks[-1].get("type") not in ("thinking", "redacted_thinking"):
        blocks[-1].setdefault("cache_control", copy.deepcopy(cc))


def _text(text: str, cc: Any = None) -> dict:
    block = {"type": "text", "text": text}
    if cc:
        block["cache_control"] = copy.deepcopy(cc)
    return block


def _part_cache(part: dict) -> Any:
    cc = part.get("cache_control")
    if not cc and isinstance(part.get("prompt_cache_breakpoint"), dict):
        cc = {"type": "ephemeral"}
    return cc


def _text_only(msg: dict, p: str) -> list[dict]:
    """System/developer content: text blocks only."""
    content = msg.get("content")
    if content is None or isinstance(content, str):
        return [_text(content, msg.get("cache_control"))] if content and content.strip() else []
    if not isinstance(content, list):
        raise InvalidRequest(f"{p}.content must be a string or an array of text parts", param=f"{p}.content")
    blocks = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise InvalidRequest(f"{p}.content[{j}] must be a text part", param=f"{p}.content[{j}]")
        if part["text"].strip():
            blocks.append(_text(part["text"], _part_cache(part)))
    _mark_last(blocks, msg.get("cache_control"))
    return blocks


def _user_blocks(msg: dict, p: str, betas: list[str]) -> list[dict]:
    content = msg.get("content")
    if isinstance(content, str):
        return [_text(content)] if content.strip() else []
    if not isinstance(content, list):
        raise InvalidRequest(f"{p}.content must be a string or an array of content parts", param=f"{p}.content")
    blocks = (_user_part(part, f"{p}.content[{j}]", betas) for j, part in enumerate(content))
    return [b for b in blocks if b is not None]


def _user_part(part: Any, p: str, betas: list[str]) -> dict | None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise InvalidRequest(f"{p}.text must be a string", param=f"{p}.text")
        return _text(part["text"], _part_cache(part)) if part["text"].strip() else None
    if kind == "image_url":
        block = _image_url(part.get("image_url"), f"{p}.image_url")
    elif kind == "file":
        block = _file(part.get("file"), f"{p}.file", betas)
    elif kind == "document" and "source" not in part:
        block = _orq_document(part.get("document"), f"{p}.document")
    elif kind in NATIVE_BLOCKS:
        return copy.deepcopy(part)
    elif kind == "input_audio":
        raise InvalidRequest("audio input is not supported by Claude models", param=p)
    else:
        raise InvalidRequest(f"unsupported content part type {kind!r}", param=f"{p}.type")
    cc = _part_cache(part)
    if cc:
        block["cache_control"] = copy.deepcopy(cc)
    return block


def _data_uri(uri: str, p: str) -> tuple[str, str]:
    m = _DATA_URI.match(uri)
    if not m or ";base64" not in m.group(2).lower():
        raise InvalidRequest("data URIs must be base64-encoded (data:<media type>;base64,...)", param=p)
    mt = m.group(1).strip().lower()
    return ("image/jpeg" if mt == "image/jpg" else mt), m.group(3)


def _media_block(mt: str, data: str, p: str) -> dict:
    if mt in IMAGE_TYPES:
        return {"type": "image", "source": {"type": "base64", "media_type": mt, "data": data}}
    if mt == "application/pdf":
        return {"type": "document", "source": {"type": "base64", "media_type": mt, "data": data}}
    if mt == "text/plain":
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidRequest("text/plain file data must be base64-encoded UTF-8", param=p) from None
        return {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": text}}
    raise InvalidRequest(
        f"unsupported media type {mt!r}: use image/jpeg, image/png, image/gif, image/webp, application/pdf "
        "or text/plain",
        param=p,
    )


def _image_url(iu: Any, p: str) -> dict:
    url = iu if isinstance(iu, str) else iu.get("url") if isinstance(iu, dict) else None
    if not isinstance(url, str) or not url:
        raise InvalidRequest(f"{p}.url is required", param=f"{p}.url")
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    if url.startswith("data:"):
        mt, data = _data_uri(url, f"{p}.url")
        if mt not in IMAGE_TYPES and mt != "application/pdf":
            raise InvalidRequest(
                f"unsupported image media type {mt!r}: use image/jpeg, image/png, image/gif or image/webp",
                param=f"{p}.url",
            )
        return _media_block(mt, data, f"{p}.url")
    raise InvalidRequest(f"{p}.url must be an http(s) URL or a data: URI", param=f"{p}.url")


def _file(f: Any, p: str, betas: list[str]) -> dict:
    if not isinstance(f, dict):
        raise InvalidRequest(f"{p} must be an object", param=p)
    data, file_id = f.get("file_data"), f.get("file_id")
    if isinstance(data, str) and data:
        if data.startswith("data:"):
            return _media_block(*_data_uri(data, f"{p}.file_data"), f"{p}.file_data")
        return _media_block("application/pdf", data, f"{p}.file_data")
    if isinstance(file_id, str) and file_id:
        if FILES_BETA not in betas:
            betas.append(FILES_BETA)
        return {"type": "document", "source": {"type": "file", "file_id": file_id}}
    raise InvalidRequest(f"{p} needs file_data or file_id", param=p)


def _orq_document(d: Any, p: str) -> dict:
    if not isinstance(d, dict) or d.get("type", "pdf") != "pdf":
        raise InvalidRequest(f'{p} must be {{"type":"pdf","url"|"data":...}}', param=p)
    url, data = d.get("url"), d.get("data")
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return {"type": "document", "source": {"type": "url", "url": url}}
    src = url if isinstance(url, str) and url.startswith("data:") else data
    if isinstance(src, str) and src:
        mt, b64 = _data_uri(src, p) if src.startswith("data:") else ("application/pdf", src)
        if mt != "application/pdf":
            raise InvalidRequest(f"{p} must be a PDF, got {mt!r}", param=p)
        return _media_block(mt, b64, p)
    raise InvalidRequest(f"{p} needs an http(s) url or base64 data", param=p)


def _tool_result(msg: dict, p: str, betas: list[str], tool_id: Any, id_field: str) -> dict:
    if not isinstance(tool_id, str) or not tool_id:
        raise InvalidRequest(f"{p}.{id_field} does not name a tool call", param=f"{p}.{id_field}")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": _safe_id(tool_id)}
    content = msg.get("content")
    if isinstance(content, list):
        parts = (_user_part(part, f"{p}.content[{j}]", betas) for j, part in enumerate(content))
        blocks = [b for b in parts if b is not None]
        if blocks:
            block["content"] = blocks
    elif isinstance(content, str):
        if content:
            block["content"] = content
    elif content is not None:
        raise InvalidRequest(f"{p}.content must be a string or an array of parts", param=f"{p}.content")
    if msg.get("is_error") is True:
        block["is_error"] = True
    return block


def _safe_id(tool_id: str) -> str:
    return _BAD_ID_CHARS.sub("_", tool_id)


# ---------------------------------------------------------------- assistant turns


def _assistant_blocks(msg: dict, p: str, i: int, legacy: dict[str, str]) -> list[dict]:
    content = msg.get("content")
    reasoning_parts: list[Any] = []
    body: list[dict] = []
    if isinstance(content, str):
        body = [_text(content)] if content.strip() else []
    elif isinstance(content, list):
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in REASONING_PARTS:
                reasoning_parts.append(part)
            elif kind == "text" and isinstance(part.get("text"), str):
                if part["text"].strip():
                    body.append(_text(part["text"], _part_cache(part)))
            elif kind in NATIVE_BLOCKS:
                body.append(copy.deepcopy(part))
            elif kind != "refusal":
                raise InvalidRequest(f"unsupported assistant content part {kind!r}", param=f"{p}.content[{j}]")
    elif content is not None:
        raise InvalidRequest(f"{p}.content must be a string, an array or null", param=f"{p}.content")
    calls = msg.get("tool_calls") or []
    if not isinstance(calls, list):
        raise InvalidRequest(f"{p}.tool_calls must be an array", param=f"{p}.tool_calls")
    uses = [_tool_use(tc, f"{p}.tool_calls[{k}]") for k, tc in enumerate(calls)]
    fc = msg.get("function_call")
    if isinstance(fc, dict):
        call_id = f"call_{fc.get('name')}_{i}"
        uses.append(_tool_use({"id": call_id, "function": fc}, f"{p}.function_call"))
        legacy[fc.get("name")] = call_id  # type: ignore[index]
    return _reasoning_blocks(msg, reasoning_parts, p) + body + uses


def _tool_use(tc: Any, p: str) -> dict:
    if not isinstance(tc, dict) or tc.get("type", "function") != "function":
        raise InvalidRequest(f"{p} must be a function tool call", param=p)
    fn = tc.get("function")
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise InvalidRequest(f"{p}.function.name is required", param=f"{p}.function.name")
    if not isinstance(tc.get("id"), str) or not tc["id"]:
        raise InvalidRequest(f"{p}.id is required", param=f"{p}.id")
    args = fn.get("arguments")
    if isinstance(args, str):
        try:
            args = orjson.loads(args) if args.strip() else {}
        except orjson.JSONDecodeError:
            raise InvalidRequest(f"{p}.function.arguments is not valid JSON", param=f"{p}.function.arguments") from None
    elif args is None:
        args = {}
    if not isinstance(args, dict):
        raise InvalidRequest(f"{p}.function.arguments must be a JSON object", param=f"{p}.function.arguments")
    block = {"type": "tool_use", "id": _safe_id(tc["id"]), "name": fn["name"], "input": copy.deepcopy(args)}
    if tc.get("cache_control"):
        block["cache_control"] = copy.deepcopy(tc["cache_control"])
    return block


def _reasoning_blocks(msg: dict, parts: list[Any], p: str) -> list[dict]:
    """Thinking blocks to replay first: ordered sources (thinking_blocks, then content parts) deduplicated;
    the flat orq fields only when no ordered source gave anything. Unsigned reasoning is dropped."""
    listed = msg.get("thinking_blocks") or []
    if not isinstance(listed, list):
        raise InvalidRequest(f"{p}.thinking_blocks must be an array", param=f"{p}.thinking_blocks")
    out: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for raw in [*listed, *parts]:
        block = _signed_block(raw)
        if block is not None:
            key = (block["type"], block.get("signature") or block.get("data"))
            if key not in seen:
                seen.add(key)
                out.append(block)
    if out:
        return out
    flat = _signed_block(
        {"type": "reasoning", "reasoning": msg.get("reasoning"), "signature": msg.get("reasoning_signature")}
    )
    redacted = msg.get("redacted_reasoning")
    redacted = [redacted] if isinstance(redacted, str) else redacted if isinstance(redacted, list) else []
    blocks = [flat] + [_signed_block({"type": "redacted_thinking", "data": d}) for d in redacted]
    return [b for b in blocks if b is not None]


def _signed_block(b: Any) -> dict | None:
    kind = b.get("type") if isinstance(b, dict) else None
    if kind in ("thinking", "reasoning"):
        sig = b.get("signature")
        text = b.get(kind)
        if isinstance(sig, str) and sig:
            return {"type": "thinking", "thinking": text if isinstance(text, str) else "", "signature": sig}
    elif kind in ("redacted_thinking", "redacted_reasoning"):
        data = b.get("data")
        if isinstance(data, str) and data:
            return {"type": "redacted_thinking", "data": data}
    return None
