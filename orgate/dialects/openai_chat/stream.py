"""Anthropic SSE events -> OpenAI `chat.completion.chunk` frames (no I/O; one encoder per response).

Sequence: a role chunk (`{"role":"assistant","content":""}`) on `message_start` (or before the first
content if that never came), then per event:
- text_delta -> `delta.content`; empty deltas are skipped.
- thinking_delta -> `delta.reasoning_content` + `delta.reasoning`; signature_delta ->
  `delta.reasoning_signature` + `delta.thinking_blocks:[the complete block: accumulated text + signature]`,
  so a client that keeps `thinking_blocks` can replay it verbatim.
- redacted_thinking start -> `delta.redacted_reasoning` + `delta.thinking_blocks:[{type:redacted_thinking,data}]`.
- tool_use start -> `delta.tool_calls:[{index,id,type,function:{name,arguments:""}}]` (index counts tool
  calls only); input_json_delta -> `{index, function:{arguments}}` fragments (empty ones skipped).
- server-tool blocks, citations, ping and unknown events -> nothing.
- message_stop -> `delta:{}` with `finish_reason`, then (include_usage) `choices:[]` + `usage`;
  `finish()` adds `data: [DONE]`. With include_usage every other chunk carries `"usage": null`.
- An upstream `error` event, or `error()`, -> `data: {"error":{...}}` then `data: [DONE]` (the SDK raises
  APIError on the error chunk before it reads [DONE]); later input is ignored. A stream that ends with
  neither message_delta nor message_stop is reported by `finish()` as an error, never as a clean stop.
"""

from __future__ import annotations

from typing import Any

import orjson

from orgate.core.sse import SSEFramer
from orgate.core.usage import Usage
from orgate.dialects.anthropic.usage import merge_usage
from orgate.dialects.openai_chat.errors import error_object
from orgate.dialects.openai_chat.response import (
    chat_id,
    finish_reason,
    thinking_tokens,
    tool_call,
    usage_to_openai,
)
from orgate.errors import KIND_STATUS, kind_for_status, status_for_kind

DONE = b"data: [DONE]\n\n"


class ChatStreamEncoder:
    def __init__(self, *, model: str, created: int, include_usage: bool):
        self._model = model
        self._created = created
        self._include_usage = include_usage
        self._id = chat_id(None)
        self._usage = Usage()
        self._reasoning_tokens = 0
        self._started = False
        self._stop_reason: str | None = None
        self._finished = False  # finish chunk sent
        self._done = False  # [DONE] sent
        self._next_tool = 0
        self._blocks: dict[int, dict[str, Any]] = {}  # content index -> {"kind", "tool"?, "text"?}
        # A chunk's bytes before and after its delta, built once per chunk id (see _chunk): orjson.dumps of
        # the whole chunk for every token was most of the translation's cost.
        self._frame_id: str | None = None
        self._frame = b""
        self._frame_tail = b',"logprobs":null,"finish_reason":null}]' + (b',"usage":null' if include_usage else b"") \
            + b"}\n\n"

    @property
    def usage(self) -> Usage:
        return self._usage

    # ------------------------------------------------------------ public API

    def feed(self, event: dict) -> bytes:
        if self._done or not isinstance(event, dict):
            return b""
        kind = event.get("type")
        if kind == "content_block_delta":  # nearly every event: a text delta once the role chunk is out
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta" and self._started:
                # What _block_delta and _chunk do, without their calls: once the role chunk is out, the id is
                # fixed and _frame holds its bytes.
                text = delta.get("text")
                return self._frame + orjson.dumps({"content": text}) + self._frame_tail if text else b""
            return self._block_delta(event.get("index"), delta)
        if kind == "message_start":
            return self._message_start(event.get("message") or {})
        if kind == "content_block_start":
            return self._block_start(event.get("index"), event.get("content_block") or {})
        if kind == "message_delta":
            usage = event.get("usage")
            merge_usage(self._usage, usage)
            self._reasoning_tokens = thinking_tokens(usage) or self._reasoning_tokens
            self._stop_reason = (event.get("delta") or {}).get("stop_reason") or self._stop_reason
            return b""
        if kind == "message_stop":
            return self._final_chunks()
        if kind == "error":
            err = event.get("error") if isinstance(event.get("error"), dict) else {}
            err_kind = err.get("type") if isinstance(err.get("type"), str) else "api_error"
            message = err.get("message") if isinstance(err.get("message"), str) else "upstream error"
            return self.error(err_kind, message, status_for_kind(err_kind, 500))
        return b""  # ping, content_block_stop and unknown events

    def finish(self) -> bytes:
        if self._done:
            return b""
        if not self._finished and self._stop_reason is None:
            return self.error("api_error", "upstream stream ended before the response was complete", 502)
        out = self._final_chunks()
        self._done = True
        return out + DONE

    def error(self, kind: str, message: str, status: int) -> bytes:
        if self._done:
            return b""
        self._done = True
        if kind not in KIND_STATUS:
            kind = kind_for_status(status)
        return b"data: " + orjson.dumps({"error": error_object(kind, message)}) + b"\n\n" + DONE

    # ------------------------------------------------------------ events

    def _chunk(self, delta: dict, finish: str | None = None) -> bytes:
        if finish is None:  # nearly every chunk of a stream: the same bytes around a new delta
            if self._frame_id != self._id:
                self._frame_id = self._id
                self._frame = self._framed({}, None).partition(b'"delta":{}')[0] + b'"delta":'
            return self._frame + orjson.dumps(delta) + self._frame_tail
        return self._framed(delta, finish)

    def _framed(self, delta: dict, finish: str | None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self._include_usage:
            chunk["usage"] = None
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def _ensure_started(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._chunk({"role": "assistant", "content": ""})

    def _message_start(self, message: dict) -> bytes:
        if not self._started:
            self._id = chat_id(message.get("id"))
        merge_usage(self._usage, message.get("usage"))
        return self._ensure_started()

    def _block_start(self, index: Any, block: dict) -> bytes:
        kind = block.get("type")
        if kind == "tool_use":
            tool = self._next_tool
            self._next_tool += 1
            self._blocks[index] = {"kind": "tool", "tool": tool}
            call = tool_call({"id": block.get("id"), "name": block.get("name")}, tool)
            call["function"]["arguments"] = ""
            return self._ensure_started() + self._chunk({"tool_calls": [call]})
        if kind == "thinking":
            self._blocks[index] = {"kind": "thinking", "text": block.get("thinking") or ""}
        elif kind == "redacted_thinking":
            data = block.get("data")
            delta = {"redacted_reasoning": data, "thinking_blocks": [{"type": "redacted_thinking", "data": data}]}
            return self._ensure_started() + self._chunk(delta)
        elif kind == "text" and block.get("text"):
            return self._ensure_started() + self._chunk({"content": block["text"]})
        return b""

    def _block_delta(self, index: Any, delta: dict) -> bytes:
        kind = delta.get("type")
        state = self._blocks.get(index) or {}
        if kind == "text_delta":
            out = {"content": delta.get("text")} if delta.get("text") else None
        elif kind == "thinking_delta" and state.get("kind") == "thinking":
            text = delta.get("thinking") or ""
            state["text"] += text
            out = {"reasoning_content": text, "reasoning": text} if text else None
        elif kind == "signature_delta" and state.get("kind") == "thinking":
            sig = delta.get("signature")
            block = {"type": "thinking", "thinking": state["text"], "signature": sig}
            out = {"reasoning_signature": sig, "thinking_blocks": [block]}
        elif kind == "input_json_delta" and state.get("kind") == "tool" and delta.get("partial_json"):
            out = {"tool_calls": [{"index": state["tool"], "function": {"arguments": delta["partial_json"]}}]}
        else:
            out = None
        return self._ensure_started() + self._chunk(out) if out else b""

    def _final_chunks(self) -> bytes:
        if self._finished:
            return b""
        self._finished = True
        out = self._ensure_started() + self._chunk({}, finish_reason(self._stop_reason))
        if self._include_usage:
            chunk = {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [],
                "usage": usage_to_openai(self._usage, self._reasoning_tokens),
            }
            out += b"data: " + orjson.dumps(chunk) + b"\n\n"
        return out


class OpenAIProbe:
    """Decides, from an OpenAI chat stream's first bytes, whether choices started (True) or an error came
    first (False); the OpenAI relay's counterpart of dialects/anthropic/sse.py's AnthropicProbe."""

    __slots__ = ("_framer", "error")

    def __init__(self) -> None:
        self._framer = SSEFramer()
        self.error: tuple[str, str] | None = None

    def feed(self, chunk: bytes) -> bool | None:
        for _, data in self._framer.feed(chunk):
            if data == b"[DONE]":
                return True
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(obj, dict):
                continue
            if "error" in obj:
                err = obj["error"] if isinstance(obj["error"], dict) else {}
                self.error = (str(err.get("type") or "api_error"), str(err.get("message") or "upstream error event"))
                return False
            if "choices" in obj:
                return True
        return None
