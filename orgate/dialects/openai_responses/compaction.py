"""Codex's server-side compaction, answered by a Claude summarization.

When its context fills, Codex's built-in OpenAI provider asks the server to compact the conversation:
- Codex 0.171 (remote compaction v2): an ordinary `POST /v1/responses` whose last input item is
  `{"type": "compaction_trigger"}`; it expects exactly one output item, `{"type": "compaction", "id",
  "encrypted_content"}` (streamed as output_item.added / output_item.done, then response.completed).
- the dedicated endpoint `POST /v1/responses/compact` (earlier releases and other clients), body
  `{model, input, instructions, tools, ...}`, answered with JSON `{"object": "response.compaction",
  "output": [the user messages..., compaction item], "usage"}`.
Either way orgate asks the conversation's own model for a summary of a plain-text transcript of the
input (no tools and no thinking: the history's tool calls and signed thinking blocks need not be
replayable for a summary), and seals the summary into the item's `encrypted_content` with the envelope,
bound to the API key. When the item comes back in a later request's input, items.py opens it into a user
turn that carries the summary; a foreign compaction item (OpenAI's own) does not open and is dropped.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from orgate.core.usage import Usage
from orgate.dialects.anthropic.usage import merge_usage
from orgate.dialects.openai_responses.envelope import ReasoningEnvelope
from orgate.dialects.openai_responses.items import system_and_messages
from orgate.dialects.openai_responses.params import ResponsesOptions
from orgate.dialects.openai_responses.response import response_object, usage_object
from orgate.dialects.openai_responses.stream import ResponsesStreamEncoder

TRIGGER = "compaction_trigger"
SUMMARY_MAX_TOKENS = 8192
# A single tool output longer than this is cut in the transcript: the summary needs its gist, not all of it.
_TOOL_TEXT_LIMIT = 8000
# User messages kept verbatim beside the compaction item on /responses/compact, newest first, up to this.
_KEPT_USER_CHARS = 80_000

_INSTRUCTIONS = (
    "You compact a coding agent's conversation so the agent can continue the task with only your summary "
    "and the user's messages. Write a precise, self-contained summary: the user's goal and constraints; "
    "what has been done (files created or changed, commands run and their important results); decisions "
    "taken and why; errors met and how they were handled; and exactly what remains to do next. Keep "
    "identifiers, paths, and values verbatim. Do not address the user; output only the summary."
)


def is_trigger(body: Any) -> bool:
    """A /v1/responses request that asks for a compaction rather than a reply."""
    items = body.get("input") if isinstance(body, dict) else None
    return isinstance(items, list) and bool(items) and isinstance(items[-1], dict) and items[-1].get("type") == TRIGGER


def summary_request(body: dict, opts: ResponsesOptions, envelope: ReasoningEnvelope) -> tuple[dict, list[str]]:
    """The Anthropic request that summarizes the conversation in `body` (trigger or /responses/compact)."""
    items = [i for i in body.get("input") or [] if not (isinstance(i, dict) and i.get("type") == TRIGGER)]
    _, messages = system_and_messages({"input": items}, envelope, opts.key_id)
    max_tokens = min(SUMMARY_MAX_TOKENS, opts.max_output_tokens or SUMMARY_MAX_TOKENS)
    prompt = "<transcript>\n" + transcript(messages) + "\n</transcript>\n\nSummarize this conversation."
    out: dict[str, Any] = {
        "model": opts.upstream_model, "max_tokens": max_tokens, "system": [{"type": "text", "text": _INSTRUCTIONS}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
    }
    if body.get("stream"):
        out["stream"] = True
    return out, []


def transcript(messages: list[dict]) -> str:
    """Anthropic turns as plain text: what each side said, each tool call and (trimmed) result."""
    lines = []
    for m in messages:
        who = "USER" if m["role"] == "user" else "ASSISTANT"
        for b in m["content"]:
            text = _block_text(b)
            if text:
                lines.append(f"[{who}] {text}")
    return "\n\n".join(lines)


def _block_text(b: dict) -> str:
    kind = b.get("type")
    if kind == "text":
        return b.get("text") or ""
    if kind == "tool_use":
        return f"called tool {b.get('name')} with {orjson.dumps(b.get('input')).decode()}"
    if kind == "tool_result":
        content = b.get("content")
        if isinstance(content, list):
            content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
        text = str(content or "")
        if len(text) > _TOOL_TEXT_LIMIT:
            text = text[:_TOOL_TEXT_LIMIT] + f"\n[... {len(text) - _TOOL_TEXT_LIMIT} more characters cut]"
        return "tool result" + (" (error)" if b.get("is_error") else "") + ": " + text
    if kind in ("image", "document"):
        return f"[{kind}]"
    return ""  # thinking: the summary is of what was said and done


def summary_text(message: dict) -> str:
    return "".join(b.get("text", "") for b in message.get("content") or [] if b.get("type") == "text").strip()


def compaction_item(summary: str, envelope: ReasoningEnvelope, key_id: str) -> dict:
    return {"type": "compaction", "id": "cmp_" + secrets.token_hex(12),
            "encrypted_content": envelope.seal_text(summary, key_id=key_id)}


def trigger_response(message: dict, *, model: str, created: int, request: dict, envelope: ReasoningEnvelope,
                     key_id: str) -> dict:
    """A non-streamed answer to a compaction_trigger request: a response whose one output is the item."""
    usage = Usage()
    merge_usage(usage, message.get("usage"))
    item = compaction_item(summary_text(message), envelope, key_id)
    return response_object("resp_" + secrets.token_hex(12), model=model, created=created, request=request,
                           status="completed", output=[item], usage=usage_object(usage, 0))


def compact_response(message: dict, *, created: int, request: dict, envelope: ReasoningEnvelope,
                     key_id: str) -> dict:
    """The answer of POST /v1/responses/compact: the user messages kept, then the compaction item."""
    usage = Usage()
    merge_usage(usage, message.get("usage"))
    item = compaction_item(summary_text(message), envelope, key_id)
    return {"id": "resp_" + secrets.token_hex(12), "object": "response.compaction", "created_at": created,
            "output": [*kept_user_messages(request.get("input")), item], "usage": usage_object(usage, 0)}


def kept_user_messages(items: Any) -> list[dict]:
    """The conversation's user messages, the newest that fit _KEPT_USER_CHARS, in their original order."""
    users = [i for i in items or [] if isinstance(i, dict) and i.get("type", "message") == "message"
             and i.get("role") == "user"]
    kept, size = [], 0
    for item in reversed(users):
        size += len(orjson.dumps(item.get("content")))
        if size > _KEPT_USER_CHARS and kept:
            break
        kept.append(item)
    return kept[::-1]


class CompactionStreamEncoder(ResponsesStreamEncoder):
    """The streamed answer to a compaction_trigger request: the summary is collected, then sent as the one
    compaction item when the upstream message is complete."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._text: list[str] = []

    def _block_start(self, index: Any, block: dict) -> bytes:
        if block.get("type") == "text":
            self._text.append(block.get("text") or "")
        self._blocks[index] = {"type": block.get("type")}
        return b""

    def _block_delta(self, state: dict | None, delta: dict) -> bytes:
        if state is not None and state["type"] == "text" and delta.get("type") == "text_delta":
            self._text.append(delta.get("text") or "")
        return b""

    def _block_stop(self, state: dict | None) -> bytes:
        return b""

    def finish(self) -> bytes:
        if self._done:
            return b""
        if self._stop_reason is None:
            return self.error("api_error", "upstream stream ended before the summary was complete", 502)
        item = compaction_item("".join(self._text).strip(), self._envelope, self._key_id)
        pending = {"type": "compaction", "id": item["id"]}
        out = self._emit("response.output_item.added", output_index=0, item=pending)
        out += self._emit("response.output_item.done", output_index=0, item=item)
        self._output.append(item)
        self._done = True
        self.final = self._response("completed", self._output, self._usage_obj())
        return out + self._emit("response.completed", response=self.final)
