"""Shared helpers for the real-client tests: locating a CLI, an isolated home, scripted upstream replies.

Each client runs offline against orgate (which talks to the fake Anthropic upstream). Homes live under
$HOME/.cache/orgate-client-homes (or $ORGATE_CLIENT_HOMES), never under /tmp -- Codex refuses a CODEX_HOME
under /tmp -- and never inside this repository: OpenCode takes the enclosing git work tree as its project
directory, so a work dir inside the repo would make it write into the repo root. Removed after each test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from tests.fakes.anthropic_fake import Reply, text, tool_use

CLIENT_BIN = Path(os.environ.get("ORGATE_CLIENTS_BIN", "/work/clients/node_modules/.bin"))


def find_bin(name: str) -> str | None:
    """The client's executable: PATH first (scripts/test.sh puts ./.clients there), else a shared npm install."""
    found = shutil.which(name)
    if found:
        return found
    local = CLIENT_BIN / name
    return str(local) if local.exists() else None


@contextmanager
def client_home(prefix: str) -> Iterator[Path]:
    """A fresh directory outside /tmp and outside any git work tree, removed afterwards."""
    root = Path(os.environ.get("ORGATE_CLIENT_HOMES") or Path.home() / ".cache" / "orgate-client-homes")
    root.mkdir(parents=True, exist_ok=True)
    home = root / f"{prefix}-{uuid.uuid4().hex[:10]}"
    home.mkdir()
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run(cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 80) -> subprocess.CompletedProcess[str]:
    """Run a client non-interactively (stdin closed) and capture its output."""
    return subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def json_lines(out: str) -> list[dict[str, Any]]:
    """The JSON objects in a client's line-delimited output (other lines ignored)."""
    events = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                events.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    return events


def tool_names(body: dict[str, Any]) -> set[str]:
    return {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}


def answers_tool(body: dict[str, Any]) -> bool:
    """True when the request's last user turn carries a tool_result (the client ran our tool)."""
    last = body["messages"][-1]
    content = last.get("content")
    return last["role"] == "user" and isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def tool_then_text(tool: str, args: dict[str, Any], final: str, *, thinking: dict[str, Any] | None = None,
                   usage: dict[str, Any] | None = None) -> Callable[[dict[str, Any]], Reply]:
    """A fake-upstream script for an agent turn: call `tool` with `args` when the client declared it and has
    not answered it yet, then answer `final`. Requests without that tool (title generation...) get text.
    With `thinking`, the tool-call turn starts with that signed thinking block."""
    kw: dict[str, Any] = {"usage": usage} if usage else {}

    def script(body: dict[str, Any]) -> Reply:
        if tool in tool_names(body) and not answers_tool(body):
            reply = tool_use(tool, args, **kw)
            if thinking is not None:
                reply.blocks.insert(0, dict(thinking))
            return reply
        return text(final, **kw)

    return script


def sdk_turn(client: Any, stream: bool, **kwargs: Any) -> tuple[str, Any]:
    """One Messages call with the official anthropic SDK, streamed or not: (text, final Message)."""
    if stream:
        with client.messages.stream(**kwargs) as s:
            text = "".join(s.text_stream)
            return text, s.get_final_message()
    final = client.messages.create(**kwargs)
    return final.content[0].text, final
