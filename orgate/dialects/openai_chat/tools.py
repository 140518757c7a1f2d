"""Chat `tools` / `tool_choice` / `parallel_tool_calls` -> Anthropic tools and tool_choice."""

from __future__ import annotations

import copy
import re
from typing import Any

from orgate.errors import InvalidRequest

_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")


def apply_tools(body: dict, out: dict) -> None:
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
