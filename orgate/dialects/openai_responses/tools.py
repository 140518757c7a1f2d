"""Responses tools -> Anthropic tools (function, namespace, custom, local_shell; hosted tools dropped), the
reverse index used to render tool calls back, and `tool_choice` / `parallel_tool_calls`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orgate.errors import InvalidRequest

NS_SEP = "__"
LOCAL_SHELL = "local_shell"
_INPUT_SCHEMA = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}
_SHELL_SCHEMA = {
    "type": "object",
    "properties": {
        "command": {"type": "array", "items": {"type": "string"}},
        "workdir": {"type": "string"},
        "timeout_ms": {"type": "integer"},
    },
    "required": ["command"],
}


@dataclass(frozen=True)
class ToolRef:
    """How an Anthropic tool name maps back to the Responses tool the client declared."""

    kind: str  # "function" | "custom" | "local_shell"
    name: str
    namespace: str | None = None


def req_str(item: dict, field: str, path: str) -> str:
    value = item.get(field)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"`{field}` is required", param=f"{path}.{field}")
    return value


def tool_index(tools: Any) -> dict[str, ToolRef]:
    """Anthropic tool name -> the Responses tool it came from (for rendering tool calls back)."""
    index: dict[str, ToolRef] = {}
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict):
            continue
        kind, name = tool.get("type"), tool.get("name")
        if kind in ("function", "custom") and isinstance(name, str):
            index[name] = ToolRef(kind, name)
        elif kind == "local_shell":
            index[LOCAL_SHELL] = ToolRef("local_shell", LOCAL_SHELL)
        elif kind == "namespace" and isinstance(name, str):
            for sub in tool.get("tools") or []:
                if isinstance(sub, dict) and sub.get("type") in ("function", "custom") and sub.get("name"):
                    index[f"{name}{NS_SEP}{sub['name']}"] = ToolRef(sub["type"], sub["name"], name)
    return index


def anthropic_tools(tools: Any) -> list[dict]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidRequest("`tools` must be an array", param="tools")
    out: list[dict] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequest("each tool must be an object", param=f"tools[{i}]")
        kind = tool.get("type")
        if kind == "namespace":
            ns = req_str(tool, "name", f"tools[{i}]")
            for j, sub in enumerate(tool.get("tools") or []):
                if isinstance(sub, dict) and sub.get("type") in ("function", "custom"):
                    out.append(_one_tool(sub, f"tools[{i}].tools[{j}]", f"{ns}{NS_SEP}"))
        elif kind in ("function", "custom"):
            out.append(_one_tool(tool, f"tools[{i}]", ""))
        elif kind == "local_shell":
            out.append(
                {"name": LOCAL_SHELL, "description": "Run a shell command locally.", "input_schema": _SHELL_SCHEMA}
            )
        # hosted tools (web_search, file_search, mcp, image_generation, ...) are dropped
    return out


def _one_tool(tool: dict, path: str, prefix: str) -> dict:
    name = prefix + req_str(tool, "name", path)
    desc = tool.get("description") if isinstance(tool.get("description"), str) else ""
    if tool["type"] == "custom":
        fmt = tool.get("format")
        if isinstance(fmt, dict) and fmt.get("type") == "grammar":
            desc = f"{desc}\n\nThe `input` string must follow this {fmt.get('syntax', '')} grammar:\n{fmt.get('definition', '')}"
        schema: dict = _INPUT_SCHEMA
    else:
        schema = tool.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(schema, dict) or schema.get("type", "object") != "object":
            raise InvalidRequest("function parameters must be a JSON Schema object", param=f"{path}.parameters")
        schema = schema if "type" in schema else {"type": "object", **schema}
    out: dict[str, Any] = {"name": name}
    if desc:
        out["description"] = desc
    out["input_schema"] = schema
    if tool.get("strict") is True:
        out["strict"] = True
    return out


def tool_choice_of(body: dict, has_tools: bool) -> dict | None:
    tc = body.get("tool_choice")
    parallel = body.get("parallel_tool_calls")
    if tc is None or tc == "auto":
        choice: dict[str, Any] = {"type": "auto"}
    elif tc == "none":
        return {"type": "none"}
    elif tc == "required":
        choice = {"type": "any"}
    elif isinstance(tc, dict) and tc.get("type") in ("function", "custom") and isinstance(tc.get("name"), str):
        ns = tc.get("namespace")
        choice = {"type": "tool", "name": f"{ns}{NS_SEP}{tc['name']}" if ns else tc["name"]}
    elif isinstance(tc, dict) and tc.get("type") == "allowed_tools":
        choice = {"type": "any" if tc.get("mode") == "required" else "auto"}
    elif isinstance(tc, dict):
        choice = {"type": "auto"}  # hosted-tool choices: their tools are dropped
    else:
        raise InvalidRequest("invalid `tool_choice`", param="tool_choice")
    if parallel is False and has_tools:
        choice["disable_parallel_tool_use"] = True
    return choice
