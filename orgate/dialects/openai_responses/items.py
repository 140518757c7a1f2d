"""Responses input items (and `instructions`) -> Anthropic `system` blocks and alternating turns.

Reasoning items are opened with the envelope for this key; what does not open is dropped."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson

from orgate.dialects.openai_responses.envelope import ReasoningEnvelope
from orgate.dialects.openai_responses.tools import LOCAL_SHELL, NS_SEP, req_str
from orgate.errors import InvalidRequest

_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_ID_BAD = re.compile(r"[^A-Za-z0-9_-]")
# How a compaction summary (compaction.py) re-enters the conversation when its item comes back.
SUMMARY_PREFIX = "Summary of the earlier part of this conversation (it was compacted to save context):\n\n"


def system_and_messages(body: dict, envelope: ReasoningEnvelope, key_id: str) -> tuple[list, list]:
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
        name = req_str(item, "name", path)
        ns = item.get("namespace")
        name = f"{ns}{NS_SEP}{name}" if isinstance(ns, str) and ns else name
        return "assistant", [_tool_use(item, path, name, _parse_arguments(item.get("arguments"), path))]
    if kind == "custom_tool_call":
        raw_input = item.get("input")
        return "assistant", [_tool_use(item, path, req_str(item, "name", path), {"input": raw_input or ""})]
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
    if kind == "compaction":  # ours opens into the summary; OpenAI's own (or a tampered one) is dropped
        summary = envelope.open_text(item.get("encrypted_content"), key_id=key_id)
        return "user", [{"type": "text", "text": SUMMARY_PREFIX + summary}] if summary else []
    return "user", []  # web_search_call, compaction_trigger, other hosted-tool items: not replayable, dropped


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
    if kind is not None and not isinstance(kind, str):
        raise InvalidRequest("content part type must be a string", param=f"{path}.type")
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
