"""Chat `messages` -> Anthropic `system` blocks and alternating turns: content parts (text, images, PDFs,
files, Anthropic-native blocks), tool calls and results, and replayed reasoning (rules in request.py)."""

from __future__ import annotations

import base64
import binascii
import copy
import re
from typing import Any

import orjson

from orgate.errors import InvalidRequest

FILES_BETA = "files-api-2025-04-14"
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
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
_BAD_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_DATA_URI = re.compile(r"^data:([^;,]+)((?:;[^;,]*)*),(.*)$", re.DOTALL)


def convert_messages(raw: Any, betas: list[str]) -> tuple[list[dict], list[dict]]:
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
    if kind is not None and not isinstance(kind, str):
        raise InvalidRequest(f"{p}.type must be a string", param=f"{p}.type")
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
