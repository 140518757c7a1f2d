from __future__ import annotations

import base64

import pytest

from orgate.dialects.openai_responses import ResponsesOptions, to_anthropic
from orgate.errors import InvalidRequest

OPTS = ResponsesOptions(upstream_model="claude-x", key_id="k")
USER = {"role": "user", "content": "hi"}


def conv(body: dict, envelope, **opts):
    out, _ = to_anthropic(body, ResponsesOptions(**{"upstream_model": "claude-x", "key_id": "k", **opts}), envelope)
    return out


def test_string_input_and_instructions(envelope):
    out, betas = to_anthropic({"model": "gpt-5", "input": "Hello", "instructions": "Be terse."}, OPTS, envelope)
    assert out == {
        "model": "claude-x",
        "system": [{"type": "text", "text": "Be terse."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
        "max_tokens": 4096,
    }
    assert betas == []


def test_system_and_developer_hoisted_in_order(envelope):
    out = conv(
        {
            "instructions": "I",
            "input": [
                {"role": "system", "content": "S"},
                USER,
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "D"}]},
                {"role": "user", "content": "again"},
            ],
        },
        envelope,
    )
    assert out["system"] == [{"type": "text", "text": t} for t in ("I", "S", "D")]
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "again"}]}
    ]


def test_images_and_files(envelope):
    pdf = base64.b64encode(b"%PDF-1.4").decode()
    txt = base64.b64encode("héllo".encode()).decode()
    parts = [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0", "detail": "high"},
        {"type": "input_image", "image_url": "https://example.com/a.jpg"},
        {"type": "input_file", "file_data": f"data:application/pdf;base64,{pdf}", "filename": "spec.pdf"},
        {"type": "input_file", "file_data": pdf},
        {"type": "input_file", "file_data": f"data:text/plain;base64,{txt}"},
        {"type": "input_file", "file_url": "https://example.com/x.pdf"},
    ]
    out = conv({"input": [{"role": "user", "content": parts}]}, envelope)
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": pdf},
            "title": "spec.pdf",
        },
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "héllo"}},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/x.pdf"}},
    ]


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"type": "input_image", "file_id": "file-1"}, "input[0].content[0].file_id"),
        ({"type": "input_file", "file_id": "file-1"}, "input[0].content[0].file_id"),
        ({"type": "input_image", "image_url": "data:image/bmp;base64,AA"}, "input[0].content[0].image_url"),
        ({"type": "input_audio", "data": "x"}, "input[0].content[0].type"),
    ],
)
def test_unsupported_parts_are_400(envelope, part, param):
    with pytest.raises(InvalidRequest) as exc:
        conv({"input": [{"role": "user", "content": [part]}]}, envelope)
    assert exc.value.param == param and exc.value.status == 400


def test_previous_response_id_is_rejected(envelope):
    with pytest.raises(InvalidRequest) as exc:
        conv({"input": "hi", "previous_response_id": "resp_1"}, envelope)
    assert exc.value.param == "previous_response_id"
    assert "stateless" in exc.value.message and "store" in exc.value.message


def test_item_reference_is_rejected(envelope):
    with pytest.raises(InvalidRequest):
        conv({"input": [USER, {"type": "item_reference", "id": "msg_1"}]}, envelope)


def test_tool_outputs_merge_first_and_calls_group(envelope):
    out = conv(
        {
            "input": [
                USER,
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a":1}'},
                {"type": "function_call", "call_id": "c.2", "name": "f", "arguments": ""},
                {"role": "user", "content": "also this"},
                {"type": "function_call_output", "call_id": "c1", "output": "one"},
                {
                    "type": "function_call_output",
                    "call_id": "c.2",
                    "output": [
                        {"type": "input_text", "text": "two"},
                        {"type": "input_image", "image_url": "data:image/gif;base64,R0"},
                    ],
                },
            ]
        },
        envelope,
    )
    assert out["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}},
                {"type": "tool_use", "id": "c_2", "name": "f", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "c1", "content": "one"},
                {
                    "type": "tool_result",
                    "tool_use_id": "c_2",
                    "content": [
                        {"type": "text", "text": "two"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0"}},
                    ],
                },
                {"type": "text", "text": "also this"},
            ],
        },
    ]


def test_bad_arguments_are_400(envelope):
    with pytest.raises(InvalidRequest) as exc:
        conv({"input": [USER, {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{oops"}]}, envelope)
    assert exc.value.param == "input[1].arguments"


def test_must_start_with_user(envelope):
    with pytest.raises(InvalidRequest):
        conv({"input": [{"role": "assistant", "content": "x"}]}, envelope)
    with pytest.raises(InvalidRequest):
        conv({"input": []}, envelope)


def test_foreign_reasoning_dropped_and_assistant_prefill_stripped(envelope):
    out = conv(
        {
            "input": [
                USER,
                {
                    "type": "reasoning",
                    "summary": [{"type": "summary_text", "text": "s"}],
                    "encrypted_content": "gAAAA-openai",
                },
                {"role": "assistant", "content": [{"type": "output_text", "text": "Sure  \n"}]},
            ]
        },
        envelope,
    )
    assert out["messages"][1] == {"role": "assistant", "content": [{"type": "text", "text": "Sure"}]}


def test_tools_mapping(envelope):
    tools = [
        {"type": "function", "name": "f", "description": "d", "parameters": None, "strict": True},
        {"type": "function", "name": "g", "parameters": {"properties": {"x": {"type": "string"}}}, "strict": False},
        {
            "type": "custom",
            "name": "apply_patch",
            "description": "Patch.",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"},
        },
        {"type": "local_shell"},
        {"type": "web_search", "external_web_access": True},
        {"type": "namespace", "name": "ns", "description": "N", "tools": [{"type": "function", "name": "h"}]},
    ]
    out = conv({"input": "x", "tools": tools, "tool_choice": "required", "parallel_tool_calls": False}, envelope)
    assert out["tools"] == [
        {"name": "f", "description": "d", "input_schema": {"type": "object", "properties": {}}, "strict": True},
        {"name": "g", "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}}},
        {
            "name": "apply_patch",
            "description": "Patch.\n\nThe `input` string must follow this lark grammar:\nstart: x",
            "input_schema": {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]},
        },
        {
            "name": "local_shell",
            "description": "Run a shell command locally.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "command": {"type": "array", "items": {"type": "string"}},
                    "workdir": {"type": "string"},
                    "timeout_ms": {"type": "integer"},
                },
                "required": ["command"],
            },
        },
        {"name": "ns__h", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "name": "f"}, {"type": "tool", "name": "f"}),
        ({"type": "function", "name": "h", "namespace": "ns"}, {"type": "tool", "name": "ns__h"}),
    ],
)
def test_tool_choice(envelope, choice, expected):
    out = conv({"input": "x", "tools": [{"type": "function", "name": "f"}], "tool_choice": choice}, envelope)
    assert out["tool_choice"] == expected


def test_no_tools_no_tool_choice(envelope):
    out = conv({"input": "x", "tools": [{"type": "web_search"}], "tool_choice": "auto"}, envelope)
    assert "tools" not in out and "tool_choice" not in out


def test_replayed_custom_and_shell_calls(envelope):
    out = conv(
        {
            "input": [
                USER,
                {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin Patch"},
                {
                    "type": "local_shell_call",
                    "call_id": "c2",
                    "status": "completed",
                    "action": {"type": "exec", "command": ["ls"], "timeout_ms": None, "working_directory": "/w"},
                },
                {"type": "custom_tool_call_output", "call_id": "c1", "output": "ok"},
                {"type": "function_call_output", "call_id": "c2", "output": ""},
                {"type": "web_search_call", "status": "completed", "action": {"type": "search", "query": "q"}},
            ]
        },
        envelope,
    )
    assert out["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "c1", "name": "apply_patch", "input": {"input": "*** Begin Patch"}},
                {"type": "tool_use", "id": "c2", "name": "local_shell", "input": {"command": ["ls"], "workdir": "/w"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "c1", "content": "ok"},
                {"type": "tool_result", "tool_use_id": "c2"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("effort", "budget", "max_tokens"),
    [
        ("minimal", 1024, 5120),
        ("low", 2048, 6144),
        ("medium", 8192, 12288),
        ("high", 16384, 20480),
        ("xhigh", 32768, 36864),
    ],
)
def test_effort_budget_table(envelope, effort, budget, max_tokens):
    out = conv({"input": "x", "reasoning": {"effort": effort}}, envelope)
    assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert out["max_tokens"] == max_tokens


def test_effort_none_and_no_reasoning(envelope):
    assert "thinking" not in conv({"input": "x", "reasoning": {"effort": "none"}}, envelope)
    assert "thinking" not in conv({"input": "x"}, envelope)


@pytest.mark.parametrize(("effort", "level"), [("minimal", "low"), ("medium", "medium"), ("xhigh", "xhigh")])
def test_adaptive(envelope, effort, level):
    out = conv(
        {"input": "x", "reasoning": {"effort": effort, "summary": "detailed"}},
        envelope,
        thinking_types=("enabled", "adaptive"),
    )
    assert out["thinking"] == {"type": "adaptive", "display": "summarized"}
    assert out["output_config"] == {"effort": level}


def test_max_output_tokens_and_budget_fit(envelope):
    out = conv({"input": "x", "max_output_tokens": 8192, "reasoning": {"effort": "high"}}, envelope)
    assert out["max_tokens"] == 8192 and out["thinking"]["budget_tokens"] == 4096
    out = conv({"input": "x", "max_output_tokens": 1500, "reasoning": {"effort": "high"}}, envelope)
    assert out["max_tokens"] == 1500 and "thinking" not in out
    out = conv({"input": "x", "reasoning": {"effort": "high"}}, envelope, max_output_tokens=10000)
    assert out["max_tokens"] == 10000 and out["thinking"]["budget_tokens"] == 5000
    with pytest.raises(InvalidRequest):
        conv({"input": "x", "max_output_tokens": 0}, envelope)


def test_forced_tool_choice_disables_thinking(envelope):
    out = conv(
        {
            "input": "x",
            "tools": [{"type": "function", "name": "f"}],
            "tool_choice": "required",
            "reasoning": {"effort": "low"},
        },
        envelope,
    )
    assert "thinking" not in out


def test_sampling(envelope):
    assert conv({"input": "x", "temperature": 1.4, "top_p": 0.5}, envelope) | {} == {
        "model": "claude-x",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
        "max_tokens": 4096,
        "temperature": 1.0,
    }
    out = conv({"input": "x", "temperature": 0.2, "top_p": 0.5}, envelope, exclusive_temperature_top_p=False)
    assert (out["temperature"], out["top_p"]) == (0.2, 0.5)
    out = conv({"input": "x", "temperature": 0.2, "top_p": 0.5}, envelope, rejects_sampling_params=True)
    assert "temperature" not in out and "top_p" not in out
    out = conv({"input": "x", "temperature": 0.2, "top_p": 0.97, "reasoning": {"effort": "low"}}, envelope)
    assert "temperature" not in out and out["top_p"] == 0.97


def test_text_format_and_ignored_fields(envelope):
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}
    out = conv(
        {
            "input": "x",
            "stream": False,
            "store": False,
            "prompt_cache_key": "p",
            "metadata": {"a": "b"},
            "client_metadata": {"x": "y"},
            "include": ["reasoning.encrypted_content"],
            "user": "u-1",
            "text": {
                "verbosity": "low",
                "format": {"type": "json_schema", "name": "o", "schema": schema, "strict": True},
            },
        },
        envelope,
    )
    assert out == {
        "model": "claude-x",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
        "max_tokens": 4096,
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
        "metadata": {"user_id": "u-1"},
        "stream": False,
    }


def test_bad_shapes_are_400_not_crashes(envelope):
    for body in (
        {"input": 5},
        {"input": [5]},
        {"input": [{"role": "bot", "content": "x"}]},
        {"input": "x", "tools": {}},
        {"input": "x", "tool_choice": 3},
        {"input": [{"role": "user", "content": [{"type": "input_text"}]}]},
        {"input": "x", "tools": [{"type": "function", "name": "f", "parameters": {"type": "array"}}]},
    ):
        with pytest.raises(InvalidRequest):
            conv(body, envelope)
