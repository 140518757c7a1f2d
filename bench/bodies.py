"""Request bodies the suite sends: a small Messages call, an OpenAI chat call, and a Claude-Code-sized call.

The Claude-Code-sized body is built from the captured Claude Code request in the shared client spec
(/work/shared/spec/clients/claude_write.json: system blocks, ~30 tools with long schemas, thinking,
context_management, history), with the captured text cut marks ("…[+N chars]") re-filled and the history
repeated until the body is about 150 KB, which is what a real Claude Code turn sends after a few tool calls.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

from bench.fake_upstream import MODEL

SPEC = Path("/work/shared/spec/clients/claude_write.json")
_CUT = re.compile(r"\u2026\[\+(\d+) chars\]")
FILLER = ("The quick brown fox jumps over the lazy dog while the gateway relays every token unchanged. ")


def small_messages(model: str = MODEL, stream: bool = False) -> dict:
    return {
        "model": model,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Say hello in one short sentence."}],
        **({"stream": True} if stream else {}),
    }


def chat_stream(model: str = MODEL) -> dict:
    return {
        "model": model,
        "max_tokens": 1024,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hello in one short sentence."},
        ],
    }


def _refill(obj):
    if isinstance(obj, str):
        return _CUT.sub(lambda m: (FILLER * (int(m.group(1)) // len(FILLER) + 1))[: int(m.group(1))], obj)
    if isinstance(obj, list):
        return [_refill(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _refill(v) for k, v in obj.items()}
    return obj


def _fallback_claude_code() -> dict:
    tools = [{"name": f"Tool{i}", "description": FILLER * 30,
              "input_schema": {"type": "object", "properties": {"path": {"type": "string", "description": FILLER * 3}},
                               "required": ["path"]}} for i in range(30)]
    return {"model": MODEL, "max_tokens": 32000, "stream": True,
            "system": [{"type": "text", "text": FILLER * 100, "cache_control": {"type": "ephemeral"}}],
            "tools": tools, "messages": [{"role": "user", "content": [{"type": "text", "text": FILLER * 20}]}]}


def claude_code(model: str = MODEL, target_bytes: int = 150_000) -> tuple[dict, dict[str, str]]:
    """Body and headers of a Claude-Code-sized streaming request (~target_bytes of JSON)."""
    headers = {"anthropic-version": "2023-06-01"}
    try:
        captured = json.loads(SPEC.read_text())
        req = captured[-1]
        body = _refill(copy.deepcopy(req["body"]))
        for k in ("anthropic-beta", "x-claude-code-session-id", "user-agent"):
            if k in req["headers"]:
                headers[k] = req["headers"][k]
    except (OSError, ValueError, KeyError, IndexError):
        body = _fallback_claude_code()
    body["model"] = model
    body["stream"] = True
    history = list(body["messages"])
    # Pad with earlier turns (a user/assistant pair each), as a session that has run a while would carry.
    turn = 0
    while len(json.dumps(body, separators=(",", ":"))) < target_bytes:
        turn += 1
        pad = [
            {"role": "user", "content": [{"type": "text", "text": f"Turn {turn}: " + FILLER * 40}]},
            {"role": "assistant", "content": [{"type": "text", "text": f"Answer {turn}: " + FILLER * 40}]},
        ]
        body["messages"] = pad + body["messages"]
    # Keep the conversation's own last turns last (history first, then the captured turns).
    assert body["messages"][-len(history):] == history
    return body, headers


def dump(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


if __name__ == "__main__":
    b, h = claude_code()
    raw = dump(b)
    print(len(raw), "bytes;", len(b.get("tools", [])), "tools;", len(b["messages"]), "messages;", sorted(b), h)
