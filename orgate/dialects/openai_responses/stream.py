"""Anthropic SSE events -> OpenAI Responses stream events (spec C.4 / D.9.3).

`start()` emits response.created + response.in_progress before any upstream byte (the SDK stream
helper needs response.created first). Each Anthropic block maps to items as in response.py: a thinking
run is one `reasoning` item (a summary part per non-empty thinking block, opened lazily on its first
delta, only when the request asked for summaries), a text run one `message` item (a content part per
block), each tool_use one call item. An item's output_item.done is sent when its run ends; the
reasoning item's done carries `encrypted_content`. `finish()` closes what is open and sends
response.completed (response.incomplete for max_tokens / refusal); a stream that ended without a
stop_reason becomes response.failed. Every event carries `sequence_number` from 0; there is no [DONE].
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from orgate.core.usage import Usage
from orgate.dialects.anthropic.sse import encode_event
from orgate.dialects.anthropic.usage import merge_usage
from orgate.dialects.openai_responses.envelope import ReasoningEnvelope
from orgate.dialects.openai_responses.errors import openai_error
from orgate.dialects.openai_responses.response import (
    ItemIds,
    final_status,
    message_item,
    output_text,
    reasoning_item,
    response_object,
    thinking_tokens,
    tool_call_item,
    usage_object,
    wants_summary,
)
from orgate.dialects.openai_responses.tools import tool_index
from orgate.errors import status_for_kind

# Codex acts on these `response.error.code`s; anything else is a plain retryable failure.
_CODEX_CODES = frozenset({"context_length_exceeded", "rate_limit_exceeded", "insufficient_quota"})


def _failure(kind: str, message: str, status: int) -> tuple[str, str]:
    """(type, code) for response.failed; codes outside the SDK's literal set are folded into it."""
    etype, code = openai_error(kind, message)
    if code in _CODEX_CODES:
        return etype, code
    return etype, "server_error" if status >= 500 or kind in ("overloaded_error", "api_error") else "invalid_prompt"


class ResponsesStreamEncoder:
    def __init__(self, *, model: str, created: int, envelope: ReasoningEnvelope, key_id: str, request: dict) -> None:
        self._model, self._created, self._envelope, self._key_id = model, created, envelope, key_id
        self._request = request
        base = secrets.token_hex(12)
        self._id = "resp_" + base
        self._ids = ItemIds(base)
        self._tools = tool_index(request.get("tools"))
        self._summaries = wants_summary(request)
        self._seq = 0
        self._output: list[dict] = []  # finished items
        self._item: dict | None = None  # the open item: {"kind", "index", "item", ...}
        self._blocks: dict[int, dict] = {}  # upstream block index -> block state
        self._usage = Usage()
        self._thinking_tokens = 0
        self._stop_reason: str | None = None
        self._done = False
        self.final: dict | None = None  # the response object of response.completed / incomplete, once sent

    @property
    def usage(self) -> Usage:
        return self._usage

    # ------------------------------------------------------------ public API

    def start(self) -> bytes:
        skeleton = self._response("in_progress", [], None)
        return self._emit("response.created", response=skeleton) + self._emit("response.in_progress", response=skeleton)

    def feed(self, event: dict) -> bytes:
        if self._done or not isinstance(event, dict):
            return b""
        kind = event.get("type")
        if kind == "message_start":
            msg = event.get("message") or {}
            self._merge_usage(msg.get("usage"))
            return b""
        if kind == "content_block_start":
            return self._block_start(event.get("index"), event.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(self._blocks.get(event.get("index")), event.get("delta") or {})
        if kind == "content_block_stop":
            return self._block_stop(self._blocks.pop(event.get("index"), None))
        if kind == "message_delta":
            self._merge_usage(event.get("usage"))
            reason = (event.get("delta") or {}).get("stop_reason")
            self._stop_reason = reason or self._stop_reason
            return b""
        if kind == "error":
            err = event.get("error") or {}
            etype = err.get("type") or "api_error"
            return self.error(etype, err.get("message") or "upstream error", status_for_kind(etype, 500))
        return b""  # message_stop, ping, unknown events

    def finish(self) -> bytes:
        if self._done:
            return b""
        if self._stop_reason is None:
            return self.error("api_error", "upstream stream ended before the message was complete", 502)
        out = self._close_item()
        status, details = final_status(self._stop_reason)
        self._done = True
        final = self.final = self._response(status, self._output, self._usage_obj(), incomplete_details=details)
        return out + self._emit(
            "response.completed" if status == "completed" else "response.incomplete", response=final
        )

    def error(self, kind: str, message: str, status: int) -> bytes:
        if self._done:
            return b""
        self._done = True
        etype, code = _failure(kind, message, status)
        err = {"type": etype, "code": code, "message": message}
        out = self._emit("error", code=code, message=message, param=None)
        final = self._response("failed", self._output, self._usage_obj(), error=err)
        return out + self._emit("response.failed", response=final)

    # ------------------------------------------------------------ blocks

    def _block_start(self, index: Any, block: dict) -> bytes:
        kind = block.get("type")
        out = b""
        if kind in ("thinking", "redacted_thinking"):
            if not self._is_open("reasoning"):
                out += self._close_item()
                out += self._open(
                    "reasoning", {"id": self._ids.next("rs"), "type": "reasoning", "summary": []}, blocks=[], parts=[]
                )
            state = {"kind": kind, "block": dict(block), "part": None}
            self._item["blocks"].append(state["block"])
        elif kind == "text":
            if not self._is_open("message"):
                out += self._close_item()
                out += self._open("message", message_item(self._ids.next("msg"), "in_progress"), parts=[])
            content_index = len(self._item["parts"])
            self._item["parts"].append(output_text(""))
            state = {"kind": "text", "content_index": content_index, "text": []}
            out += self._emit(
                "response.content_part.added", **self._where(), content_index=content_index, part=output_text("")
            )
        elif kind == "tool_use":
            out += self._close_item()
            start = tool_call_item(self._ids.next("fc"), {**block, "input": {}}, self._tools, "in_progress", "")
            out += self._open("tool", start, block=dict(block))
            state = {"kind": "tool_use", "json": []}
        else:
            return b""  # server tool blocks and unknown kinds are not rendered
        self._blocks[index] = state
        return out

    def _block_delta(self, state: dict | None, delta: dict) -> bytes:
        if state is None:
            return b""
        dtype = delta.get("type")
        if dtype == "thinking_delta" and state["kind"] == "thinking":
            text = delta.get("thinking") or ""
            state["block"]["thinking"] = state["block"].get("thinking", "") + text
            if not (self._summaries and text):
                return b""
            out = self._open_summary_part(state)
            return out + self._emit(
                "response.reasoning_summary_text.delta", **self._where(), summary_index=state["part"], delta=text
            )
        if dtype == "signature_delta" and state["kind"] == "thinking":
            state["block"]["signature"] = delta.get("signature") or ""
        elif dtype == "text_delta" and state["kind"] == "text":
            text = delta.get("text") or ""
            state["text"].append(text)
            if text:
                return self._emit(
                    "response.output_text.delta",
                    **self._where(),
                    content_index=state["content_index"],
                    delta=text,
                    logprobs=[],
                )
        elif dtype == "input_json_delta" and state["kind"] == "tool_use":
            piece = delta.get("partial_json") or ""
            state["json"].append(piece)
            if piece and self._item["item"]["type"] == "function_call":
                return self._emit("response.function_call_arguments.delta", **self._where(), delta=piece)
        return b""

    def _block_stop(self, state: dict | None) -> bytes:
        if state is None or self._item is None:
            return b""
        if state["kind"] == "thinking" and state["part"] is not None:
            text = state["block"].get("thinking", "")
            where = {**self._where(), "summary_index": state["part"]}
            self._item["parts"].append({"type": "summary_text", "text": text})
            return self._emit("response.reasoning_summary_text.done", **where, text=text) + self._emit(
                "response.reasoning_summary_part.done", **where, part={"type": "summary_text", "text": text}
            )
        if state["kind"] == "text":
            text = "".join(state["text"])
            self._item["parts"][state["content_index"]] = output_text(text)
            where = {**self._where(), "content_index": state["content_index"]}
            return self._emit("response.output_text.done", **where, text=text, logprobs=[]) + self._emit(
                "response.content_part.done", **where, part=output_text(text)
            )
        if state["kind"] == "tool_use":
            return self._finish_tool("".join(state["json"]))
        return b""

    def _open_summary_part(self, state: dict) -> bytes:
        if state["part"] is not None:
            return b""
        state["part"] = self._item["summary_count"]
        self._item["summary_count"] += 1
        return self._emit(
            "response.reasoning_summary_part.added",
            **self._where(),
            summary_index=state["part"],
            part={"type": "summary_text", "text": ""},
        )

    def _finish_tool(self, raw: str) -> bytes:
        try:
            args = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            args = {}
        args = args if isinstance(args, dict) else {}
        block = {**self._item["block"], "input": args}
        item = tool_call_item(self._item["item"]["id"], block, self._tools, "completed", raw or "{}")
        where = self._where()
        out = b""
        if item["type"] == "function_call":
            out += self._emit(
                "response.function_call_arguments.done", **where, name=item["name"], arguments=item["arguments"]
            )
        elif item["type"] == "custom_tool_call":
            if item["input"]:
                out += self._emit("response.custom_tool_call_input.delta", **where, delta=item["input"])
            out += self._emit("response.custom_tool_call_input.done", **where, input=item["input"])
        self._item["item"] = item
        return out + self._close_item()

    # ------------------------------------------------------------ items

    def _is_open(self, kind: str) -> bool:
        return self._item is not None and self._item["kind"] == kind

    def _open(self, kind: str, item: dict, **extra: Any) -> bytes:
        self._item = {"kind": kind, "index": len(self._output), "item": item, "summary_count": 0, **extra}
        return self._emit("response.output_item.added", output_index=self._item["index"], item=item)

    def _where(self) -> dict:
        return {"item_id": self._item["item"]["id"], "output_index": self._item["index"]}

    def _close_item(self) -> bytes:
        open_item, self._item = self._item, None
        if open_item is None:
            return b""
        item = open_item["item"]
        if open_item["kind"] == "reasoning":
            item = reasoning_item(item["id"], open_item["blocks"], self._envelope, self._key_id, False)
            item["summary"] = open_item["parts"]
        elif open_item["kind"] == "message":
            item = {**item, "status": "completed", "content": open_item["parts"]}
        self._output.append(item)
        return self._emit("response.output_item.done", output_index=open_item["index"], item=item)

    # ------------------------------------------------------------ plumbing

    def _merge_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            merge_usage(self._usage, usage)
            self._thinking_tokens = thinking_tokens(usage) or self._thinking_tokens

    def _usage_obj(self) -> dict:
        return usage_object(self._usage, self._thinking_tokens)

    def _response(self, status: str, output: list, usage: dict | None, **kw: Any) -> dict:
        return response_object(
            self._id,
            model=self._model,
            created=self._created,
            request=self._request,
            status=status,
            output=list(output),
            usage=usage,
            **kw,
        )

    def _emit(self, etype: str, **fields: Any) -> bytes:
        payload = {"type": etype, "sequence_number": self._seq, **fields}
        self._seq += 1
        return encode_event(etype, payload)
