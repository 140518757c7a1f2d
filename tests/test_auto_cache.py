"""Automatic prompt caching on the OpenAI routes toward Claude: where orgate puts breakpoints, that it never
adds to a client's own, the switches, and the share of input read from the fake's documented prompt cache
over a multi-turn tool session through Chat Completions and Responses, with caching off and on."""

from __future__ import annotations

import copy
import json

import openai
import pytest

from orgate.dialects.anthropic.caching import add_breakpoints
from tests.fakes.anthropic_fake import Reply, text, tool_use
from tests.fakes.prompt_cache import PromptCache, TooManyBreakpoints
from tests.gateway import Gateway

CC = {"type": "ephemeral"}


def _marks(body: dict) -> list[str]:
    out = [f"tool:{t['name']}" for t in body.get("tools", []) if "cache_control" in t]
    out += [f"system:{i}" for i, b in enumerate(body.get("system", [])) if "cache_control" in b]
    for i, m in enumerate(body["messages"]):
        out += [f"msg{i}:{j}" for j, b in enumerate(m["content"]) if isinstance(b, dict) and "cache_control" in b]
    return out


def _session_body() -> dict:
    return {"model": "m", "max_tokens": 10, "tools": [{"name": "a"}, {"name": "b"}],
            "system": [{"type": "text", "text": "rules"}, {"type": "text", "text": "more rules"}],
            "messages": [{"role": "user", "content": "do it"},
                         {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "a", "input": {}}]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
                         {"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": "s"},
                                                           {"type": "tool_use", "id": "t2", "name": "b", "input": {}}]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t2", "content": "ok"},
                                                      {"type": "text", "text": "  "}]}]}


def test_breakpoints_on_tools_system_previous_turn_and_tail():
    body = _session_body()
    assert add_breakpoints(body) == 4
    # the last tool, the last system block, the previous user turn's tail, the final turn's last cacheable block
    assert _marks(body) == ["tool:b", "system:1", "msg2:0", "msg4:0"]


def test_client_breakpoints_are_never_added_to():
    for where in ("top", "tool", "system", "message"):
        body = _session_body()
        if where == "top":
            body["cache_control"] = dict(CC)
        elif where == "tool":
            body["tools"][0]["cache_control"] = dict(CC)
        elif where == "system":
            body["system"][0]["cache_control"] = dict(CC)
        else:
            body["messages"][1]["content"][0]["cache_control"] = dict(CC)
        before = copy.deepcopy(body)
        assert add_breakpoints(body) == 0 and body == before, where


def test_first_turn_and_thinking_only_turns():
    body = {"model": "m", "max_tokens": 1, "system": "sys", "messages": [{"role": "user", "content": "hi"}]}
    assert add_breakpoints(body) == 2
    assert body["system"] == [{"type": "text", "text": "sys", "cache_control": CC}]
    assert body["messages"][0]["content"] == [{"type": "text", "text": "hi", "cache_control": CC}]
    body = {"model": "m", "max_tokens": 1, "messages": [
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"}]}]}
    assert add_breakpoints(body) == 0


def test_fake_prompt_cache_reads_the_prefix_it_wrote():
    cache = PromptCache(min_tokens=10)
    big = "x" * 400
    body = {"model": "m", "system": [{"type": "text", "text": big, "cache_control": CC}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "q1", "cache_control": CC}]}]}
    first = cache.usage(body)
    assert first["cache_read_input_tokens"] == 0 and first["cache_creation_input_tokens"] > 100
    body["messages"] += [{"role": "assistant", "content": [{"type": "text", "text": "a1"}]},
                         {"role": "user", "content": [{"type": "text", "text": "q2", "cache_control": CC}]}]
    second = cache.usage(body)
    # the whole first request is read back (20-block lookback from the new tail finds it) ...
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    # ... and changing the system prompt invalidates everything after it
    body["system"][0]["text"] = big + "!"
    assert cache.usage(body)["cache_read_input_tokens"] == 0
    body["messages"][0]["content"][0]["cache_control"] = CC
    body["tools"] = [{"name": n, "cache_control": CC} for n in "abc"]
    with pytest.raises(TooManyBreakpoints):
        cache.usage(body)


# ---------------------------------------------------------------- a tool session through a real gateway

SYSTEM = "You are a coding agent. " + " ".join(f"Rule {i}: keep the code small and readable." for i in range(200))
TOOLS = [{"type": "function", "function": {"name": n, "description": f"{n} a file. " + "Details. " * 60,
                                           "parameters": {"type": "object", "properties": {"path": {"type": "string"}},
                                                          "required": ["path"]}}} for n in ("read", "write", "grep")]
TURNS = 7


def _agent(fake) -> None:
    fake.cache_usage = True

    def script(body: dict) -> Reply:
        calls = sum(1 for m in body["messages"] if m["role"] == "assistant")
        if calls < TURNS - 1:
            return tool_use("read", {"path": f"src/module_{calls}.py"}, usage={"output_tokens": 20})
        return text("All done.", usage={"output_tokens": 5})

    fake.default = script


def _share(rows: list[dict]) -> float:
    """Cache-read share of all input tokens (read + written + uncached) over the turns after the third."""
    later = rows[3:]
    read = sum(r["cache_read_tokens"] for r in later)
    total = sum(r["input_tokens"] + r["cache_read_tokens"] + r["cache_write_5m_tokens"] for r in later)
    return read / total


def _chat_session(gw: Gateway, key: str) -> None:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)
    messages: list = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Refactor the project."}]
    for turn in range(TURNS):
        r = client.chat.completions.create(model="claude-sonnet-4.5", messages=messages, tools=TOOLS,
                                           stream=turn % 2 == 1, **({"stream_options": {"include_usage": True}}
                                                                   if turn % 2 == 1 else {}))
        if turn % 2 == 1:
            calls: dict[int, dict] = {}
            for chunk in r:
                for c in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
                    slot = calls.setdefault(c.index, {"id": "", "name": "", "arguments": ""})
                    slot["id"] += c.id or ""
                    slot["name"] += (c.function.name or "") if c.function else ""
                    slot["arguments"] += (c.function.arguments or "") if c.function else ""
            tool_calls = [{"id": c["id"], "type": "function",
                           "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls.values()]
        else:
            tool_calls = [tc.model_dump() for tc in r.choices[0].message.tool_calls or []]
        if not tool_calls:
            return
        messages.append({"role": "assistant", "content": None, "tool_calls": tool_calls})
        for tc in tool_calls:
            messages.append({"role": "tool", "tool_call_id": tc["id"], "content": "def f():\n    return 1\n" * 40})


def _responses_session(gw: Gateway, key: str) -> None:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)
    tools = [{"type": "function", **t["function"]} for t in TOOLS]
    items: list = [{"role": "user", "content": "Refactor the project."}]
    for turn in range(TURNS):
        if turn % 2 == 1:
            with client.responses.stream(model="claude-sonnet-4.5", instructions=SYSTEM, input=items,
                                         tools=tools) as stream:
                r = stream.get_final_response()
        else:
            r = client.responses.create(model="claude-sonnet-4.5", instructions=SYSTEM, input=items, tools=tools)
        calls = [o for o in r.output if o.type == "function_call"]
        if not calls:
            return
        for c in calls:
            items.append({"type": "function_call", "call_id": c.call_id, "name": c.name, "arguments": c.arguments})
            items.append({"type": "function_call_output", "call_id": c.call_id,
                          "output": "def f():\n    return 1\n" * 40})


@pytest.fixture(scope="module")
def cached_gateway(fake_session, tmp_path_factory):
    cfg = tmp_path_factory.mktemp("cache") / "orgate.yaml"
    cfg.write_text(json.dumps({"caching": {"auto": True, "off_for_keys": ["no-cache-key"]},
                               "models": {"claude-haiku-4.5": {"auto_cache": False}}}))
    gw = Gateway(fake_session.url, env={"ORGATE_CACHING__AUTO": "true"})
    gw.env["ORGATE_CONFIG"] = str(cfg)
    gw.start()
    yield gw
    gw.stop()


@pytest.mark.parametrize("surface", ["chat", "responses"])
def test_cache_read_share_after_turn_three(gateway, cached_gateway, fake, surface):
    session = _chat_session if surface == "chat" else _responses_session
    api = "openai-chat" if surface == "chat" else "openai-responses"
    shares = {}
    for label, gw in (("before", gateway), ("after", cached_gateway)):
        fake.reset()
        _agent(fake)
        key = gw.create_key(f"cache-{label}-{surface}")
        session(gw, key)
        kid = gw.query("SELECT id FROM keys WHERE name = :n", n=f"cache-{label}-{surface}")[0]["id"]
        rows = gw.ledger(TURNS, key_id=kid, api=api)
        assert len(rows) == TURNS
        shares[label] = _share(rows)
    print(f"\n{surface}: cache-read share of input after turn 3: before {shares['before']:.1%}, "
          f"after {shares['after']:.1%}")
    assert shares["before"] == 0.0
    assert shares["after"] >= 0.85


def test_switches_per_key_and_model(cached_gateway, fake):
    fake.reset()
    client = lambda k: openai.OpenAI(base_url=cached_gateway.url + "/v1", api_key=k, max_retries=0)  # noqa: E731
    on, off = cached_gateway.create_key("cache-on-key"), cached_gateway.create_key("no-cache-key")
    msgs = [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]
    client(on).chat.completions.create(model="claude-sonnet-4.5", messages=msgs)
    assert "cache_control" in fake.last["body"]["system"][0]
    client(off).chat.completions.create(model="claude-sonnet-4.5", messages=msgs)
    assert "cache_control" not in json.dumps(fake.last["body"])
    client(on).chat.completions.create(model="claude-haiku-4.5", messages=msgs)
    assert "cache_control" not in json.dumps(fake.last["body"])
    # a client's own breakpoint is kept as sent and nothing is added
    mine = [{"role": "system", "content": [{"type": "text", "text": "sys", "cache_control": CC}]},
            {"role": "user", "content": "hi"}]
    client(on).chat.completions.create(model="claude-sonnet-4.5", messages=mine)
    assert json.dumps(fake.last["body"]).count("cache_control") == 1
