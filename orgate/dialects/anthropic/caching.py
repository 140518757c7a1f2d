"""Automatic prompt-cache breakpoints for requests translated from the OpenAI dialects.

OpenAI clients (Codex, OpenCode in OpenAI mode, IDEs) send no cache markers, so Claude behind the OpenAI
routes would read nothing from the prompt cache and every turn of an agent session would pay the full input
price. Anthropic caches the prefix up to each `cache_control` breakpoint (order tools -> system -> messages),
at most four per request (api-reference §A.8). orgate places, on a request that has none:

1. the last tool definition (the tool list rarely changes inside a session),
2. the last system block,
3. the last cacheable block of the previous user turn: the tail the previous request wrote, so this
   request reads it at an exact block boundary however many blocks the last turn added,
4. the last cacheable block of the final message (written now, read by the next turn).

A request that already carries any `cache_control` (block, tool, or top-level automatic caching) is left
exactly as the client made it: its breakpoints are its own, and adding ours could exceed the limit.
Thinking blocks cannot carry `cache_control` (they are cached as part of the prefix); empty text blocks
cannot be cached; neither gets a breakpoint.
"""

from __future__ import annotations

from typing import Any

MAX_BREAKPOINTS = 4
EPHEMERAL = {"type": "ephemeral"}
_UNMARKABLE = ("thinking", "redacted_thinking")


def has_cache_control(body: dict[str, Any]) -> bool:
    if "cache_control" in body:
        return True
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and "cache_control" in tool:
            return True
    system = body.get("system")
    if isinstance(system, list) and any(isinstance(b, dict) and "cache_control" in b for b in system):
        return True
    for m in body.get("messages") or []:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list) and any(isinstance(b, dict) and "cache_control" in b for b in content):
            return True
    return False


def add_breakpoints(body: dict[str, Any]) -> int:
    """Mark `body` (a freshly translated request, changed in place); returns how many breakpoints were set."""
    if has_cache_control(body):
        return 0
    marked = 0
    tools = body.get("tools")
    if isinstance(tools, list) and tools and isinstance(tools[-1], dict):
        tools[-1]["cache_control"] = dict(EPHEMERAL)
        marked += 1
    system = body.get("system")
    if isinstance(system, str) and system:
        body["system"] = system = [{"type": "text", "text": system}]
    if isinstance(system, list) and _mark_last(system):
        marked += 1
    messages = body.get("messages") or []
    tail = len(messages) - 1
    previous_user = next((i for i in range(tail - 1, -1, -1) if messages[i].get("role") == "user"), None)
    for i in (previous_user, tail):
        if i is not None and i >= 0 and marked < MAX_BREAKPOINTS and _mark_message(messages[i]):
            marked += 1
    return marked


def _mark_message(message: dict[str, Any]) -> bool:
    content = message.get("content")
    if isinstance(content, str):
        if not content.strip():
            return False
        message["content"] = content = [{"type": "text", "text": content}]
    return isinstance(content, list) and _mark_last(content)


def _mark_last(blocks: list[Any]) -> bool:
    for block in reversed(blocks):
        if not isinstance(block, dict) or block.get("type") in _UNMARKABLE:
            continue
        if block.get("type") == "text" and not str(block.get("text") or "").strip():
            continue
        block["cache_control"] = dict(EPHEMERAL)
        return True
    return False
