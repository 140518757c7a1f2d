"""OpenAI chat request -> Anthropic Messages body: one test per mapping rule, asserting the exact dict."""

from __future__ import annotations

import base64
import copy

import pytest

from orgate.dialects.effort import EFFORT_BUDGET
from orgate.dialects.openai_chat.request import (
    FILES_BETA,
    JSON_OBJECT_INSTRUCTION,
    ChatOptions,
    to_anthropic,
)
from orgate.errors import InvalidRequest

OPTS = ChatOptions(upstream_model="claude-sonnet-4-5-20250929")
ADAPTIVE = ChatOptions(upstream_model="claude-opus-4-7", thinking_types=("adaptive",), rejects_sampling_params=True)
BOTH = ChatOptions(upstream_model="claude-sonnet-4-6", thinking_types=("enabled", "adaptive"))
USER = {"role": "user", "content": "hi"}


def conv(body: dict, opts: ChatOptions = OPTS) -> dict:
    frozen = copy.deepcopy(body)
    out, betas = to_anthropic(body, opts)
    assert body == frozen, "input was mutated"
    assert betas == []
    return out


def bad(body: dict, param: str | None, opts: ChatOptions = OPTS) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as ei:
        to_anthropic(body, opts)
    assert ei.value.status == 400
    assert ei.value.param == param
    return ei.value


def msgs(*messages: dict, **extra) -> dict:
    return {"model": "m", "messages": list(messages), **extra}


# ---------------------------------------------------------------- messages


def test_minimal_request():
    assert conv(msgs(USER)) == {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }


def test_system_and_developer_hoisted_in_order_with_cache_control():
    out = conv(
        msgs(
            {"role": "system", "content": "A"},
            USER,
            {
                "role": "developer",
                "content": [
                    {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}},
                    {"type": "text", "text": "  "},
                    {"type": "text", "text": "C"},
                ],
            },
            {"role": "system", "content": "D", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            {"role": "system", "content": ""},
        )
    )
    assert out["system"] == [
        {"type": "text", "text": "A"},
        {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "C"},
        {"type": "text", "text": "D", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ]
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_system_with_non_text_part_is_400():
    bad(
        msgs({"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}, USER),
        "messages[0].content[0]",
    )


def test_consecutive_same_role_merged():
    out = conv(
        msgs(
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"},
            {"role": "assistant", "content": "d"},
            {"role": "user", "content": "e"},
        )
    )
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}]},
        {"role": "user", "content": [{"type": "text", "text": "e"}]},
    ]


def test_tool_messages_become_one_user_turn_tool_results_first():
    out = conv(
        msgs(
            USER,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
                    {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": ""}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "one"},
            {
                "role": "tool",
                "tool_call_id": "call_2",
                "content": [{"type": "text", "text": "two"}],
                "is_error": True,
                "cache_control": {"type": "ephemeral"},
            },
            {"role": "user", "content": "next"},
        )
    )
    assert out["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
                {"type": "tool_use", "id": "call_2", "name": "g", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "one"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": [{"type": "text", "text": "two"}],
                    "is_error": True,
                    "cache_control": {"type": "ephemeral"},
                },
                {"type": "text", "text": "next"},
            ],
        },
    ]


def test_tool_result_moved_before_text_of_a_preceding_user_message():
    out = conv(
        msgs(
            USER,
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "user", "content": "note"},
            {"role": "tool", "tool_call_id": "c", "content": ""},
        )
    )
    assert out["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "c"}, {"type": "text", "text": "note"}],
    }


def test_tool_result_with_image():
    out = conv(
        msgs(
            USER,
            {
                "role": "tool",
                "tool_call_id": "c",
                "content": [
                    {"type": "text", "text": "see"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
                ],
            },
        )
    )
    assert out["messages"][0]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "c",
        "content": [
            {"type": "text", "text": "see"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
        ],
    }


def test_tool_message_without_id_is_400():
    bad(msgs(USER, {"role": "tool", "content": "x"}), "messages[1].tool_call_id")


def test_invalid_tool_arguments_json_names_param():
    e = bad(
        msgs(
            USER,
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}],
            },
        ),
        "messages[1].tool_calls[0].function.arguments",
    )
    assert "not valid JSON" in e.message
    bad(
        msgs(
            USER,
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}],
            },
        ),
        "messages[1].tool_calls[0].function.arguments",
    )


def test_tool_ids_sanitized_consistently():
    out = conv(
        msgs(
            USER,
            {
                "role": "assistant",
                "tool_calls": [{"id": "fc.1:x", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "fc.1:x", "content": "ok"},
        )
    )
    assert out["messages"][1]["content"][0]["id"] == "fc_1_x"
    assert out["messages"][2]["content"][0]["tool_use_id"] == "fc_1_x"


def test_empty_assistant_dropped_and_neighbours_merged():
    out = conv(
        msgs({"role": "user", "content": "a"}, {"role": "assistant", "content": ""}, {"role": "user", "content": "b"})
    )
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


def test_empty_user_is_400_and_no_messages_is_400():
    bad(msgs({"role": "user", "content": "   "}), "messages[0].content")
    bad(msgs({"role": "user", "content": []}), "messages[0].content")
    bad(msgs(), "messages")
    bad(msgs({"role": "system", "content": "only system"}), "messages")
    bad(msgs({"role": "wizard", "content": "x"}), "messages[0].role")


def test_final_assistant_prefill_rstripped_and_refusal_dropped():
    out = conv(
        msgs(
            USER,
            {
                "role": "assistant",
                "content": [{"type": "refusal", "refusal": "no"}, {"type": "text", "text": "Sure:  \n"}],
            },
        )
    )
    assert out["messages"][-1] == {"role": "assistant", "content": [{"type": "text", "text": "Sure:"}]}
    out = conv(msgs(USER, {"role": "assistant", "content": "  "}))
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_message_level_cache_control_on_last_block():
    out = conv(msgs({"role": "user", "content": "long doc", "cache_control": {"type": "ephemeral"}}))
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "long doc", "cache_control": {"type": "ephemeral"}}
    ]


# ---------------------------------------------------------------- content parts


def test_text_parts_with_cache_control_and_explicit_breakpoint():
    out = conv(
        msgs(
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                    {"type": "text", "text": ""},
                    {"type": "text", "text": "b", "prompt_cache_breakpoint": {"mode": "explicit"}},
                ],
            }
        )
    )
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}},
    ]


@pytest.mark.parametrize("url", ["https://example.com/a.jpg", "http://example.com/b.png"])
def test_image_url_http(url):
    out = conv(msgs({"role": "user", "content": [{"type": "image_url", "image_url": {"url": url, "detail": "high"}}]}))
    assert out["messages"][0]["content"] == [{"type": "image", "source": {"type": "url", "url": url}}]


@pytest.mark.parametrize(
    "mt,expected",
    [("image/png", "image/png"), ("image/jpg", "image/jpeg"), ("IMAGE/WEBP", "image/webp"), ("image/gif", "image/gif")],
)
def test_image_url_data_uri(mt, expected):
    part = {
        "type": "image_url",
        "image_url": {"url": f"data:{mt};base64,iVBORw0"},
        "cache_control": {"type": "ephemeral"},
    }
    out = conv(msgs({"role": "user", "content": [part]}))
    assert out["messages"][0]["content"] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": expected, "data": "iVBORw0"},
            "cache_control": {"type": "ephemeral"},
        }
    ]


def test_image_url_as_plain_string():
    out = conv(msgs({"role": "user", "content": [{"type": "image_url", "image_url": "https://x/y.png"}]}))
    assert out["messages"][0]["content"][0]["source"] == {"type": "url", "url": "https://x/y.png"}


@pytest.mark.parametrize(
    "url,param",
    [
        ("data:image/tiff;base64,AAAA", "messages[0].content[0].image_url.url"),
        ("data:image/png,notbase64", "messages[0].content[0].image_url.url"),
        ("ftp://x/y.png", "messages[0].content[0].image_url.url"),
        ("", "messages[0].content[0].image_url.url"),
    ],
)
def test_bad_image_url_is_400(url, param):
    e = bad(msgs({"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}), param)
    assert e.kind == "invalid_request_error"


def test_file_part_pdf_data_uri_and_raw_base64():
    out = conv(
        msgs(
            {
                "role": "user",
                "content": [
                    {
                        "type": "file",
                        "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"},
                        "cache_control": {"type": "ephemeral"},
                    },
                    {"type": "file", "file": {"file_data": "JVBERi0y"}},
                ],
            }
        )
    )
    assert out["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0y"}},
    ]


def test_file_part_text_plain_and_image():
    b64 = base64.b64encode("héllo".encode()).decode()
    out = conv(
        msgs(
            {
                "role": "user",
                "content": [
                    {"type": "file", "file": {"file_data": f"data:text/plain;base64,{b64}"}},
                    {"type": "file", "file": {"file_data": "data:image/png;base64,QQ=="}},
                ],
            }
        )
    )
    assert out["messages"][0]["content"] == [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "héllo"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QQ=="}},
    ]


def test_file_id_adds_files_beta():
    body = msgs(
        {
            "role": "user",
            "content": [
                {"type": "file", "file": {"file_id": "file_011CNha8iCJcU1wXNR6q4V8w"}},
                {"type": "file", "file": {"file_id": "file_2"}},
            ],
        }
    )
    out, betas = to_anthropic(body, OPTS)
    assert betas == [FILES_BETA]
    assert out["messages"][0]["content"][0] == {
        "type": "document",
        "source": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"},
    }


def test_file_unsupported_type_or_empty_is_400():
    bad(
        msgs(
            {"role": "user", "content": [{"type": "file", "file": {"file_data": "data:application/zip;base64,UEs="}}]}
        ),
        "messages[0].content[0].file.file_data",
    )
    bad(msgs({"role": "user", "content": [{"type": "file", "file": {}}]}), "messages[0].content[0].file")


def test_orq_document_part_url_and_data():
    out = conv(
        msgs(
            {
                "role": "user",
                "content": [
                    {"type": "document", "document": {"type": "pdf", "url": "https://example.com/document.pdf"}},
                    {
                        "type": "document",
                        "document": {"type": "pdf", "data": "JVBERi0x"},
                        "cache_control": {"type": "ephemeral"},
                    },
                    {"type": "document", "document": {"type": "pdf", "data": "data:application/pdf;base64,JVBERi0z"}},
                ],
            }
        )
    )
    assert out["messages"][0]["content"] == [
        {"type": "document", "source": {"type": "url", "url": "https://example.com/document.pdf"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0z"}},
    ]


def test_anthropic_native_blocks_pass_through():
    native = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA"}},
        {
            "type": "document",
            "source": {"type": "url", "url": "https://x/y.pdf"},
            "title": "Y",
            "citations": {"enabled": True},
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "search_result", "source": "s", "title": "t", "content": [{"type": "text", "text": "c"}]},
    ]
    out = conv(msgs({"role": "user", "content": native}))
    assert out["messages"][0]["content"] == native


def test_audio_and_unknown_parts_are_400():
    bad(
        msgs({"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]}),
        "messages[0].content[0]",
    )
    bad(msgs({"role": "user", "content": [{"type": "hologram"}]}), "messages[0].content[0].type")


# ---------------------------------------------------------------- parameters


def test_max_tokens_rules():
    assert conv(msgs(USER))["max_tokens"] == 4096
    assert conv(msgs(USER, max_tokens=100))["max_tokens"] == 100
    assert conv(msgs(USER, max_tokens=100, max_completion_tokens=200))["max_tokens"] == 200
    assert (
        conv(msgs(USER, max_tokens=9000), ChatOptions(upstream_model="x", max_output_tokens=8192))["max_tokens"] == 8192
    )
    assert conv(msgs(USER), ChatOptions(upstream_model="x", default_max_tokens=1000))["max_tokens"] == 1000
    bad(msgs(USER, max_tokens=0), "max_tokens")
    bad(msgs(USER, max_completion_tokens="5"), "max_completion_tokens")


def test_sampling_params():
    out = conv(msgs(USER, temperature=0.3, top_k=5))
    assert (out["temperature"], out["top_k"]) == (0.3, 5)
    assert conv(msgs(USER, temperature=1.4))["temperature"] == 1.0
    assert conv(msgs(USER, top_p=0.9))["top_p"] == 0.9
    bad(msgs(USER, temperature=-1), "temperature")
    bad(msgs(USER, top_p=3), "top_p")


def test_temperature_and_top_p_together():
    e = bad(msgs(USER, temperature=0.5, top_p=0.9), "temperature")
    assert e.message == "temperature and top_p cannot both be specified for this model"
    out = conv(
        msgs(USER, temperature=0.5, top_p=0.9), ChatOptions(upstream_model="x", exclusive_temperature_top_p=False)
    )
    assert (out["temperature"], out["top_p"]) == (0.5, 0.9)


def test_sampling_dropped_for_rejecting_models():
    out = conv(msgs(USER, temperature=0.5, top_p=0.9, top_k=3), ADAPTIVE)
    assert not {"temperature", "top_p", "top_k"} & out.keys()


def test_stop_sequences():
    assert conv(msgs(USER, stop="END"))["stop_sequences"] == ["END"]
    assert conv(msgs(USER, stop=["a", " ", "\n\nb"]))["stop_sequences"] == ["a", "\n\nb"]
    assert "stop_sequences" not in conv(msgs(USER, stop=[" "]))
    bad(msgs(USER, stop=[1]), "stop")


def test_user_to_metadata():
    assert conv(msgs(USER, user="u-42"))["metadata"] == {"user_id": "u-42"}
    assert conv(msgs(USER, safety_identifier="hash1"))["metadata"] == {"user_id": "hash1"}
    assert "metadata" not in conv(msgs(USER, user="jane@example.com"))
    assert "metadata" not in conv(msgs(USER, metadata={"k": "v"}))


def test_n():
    assert "n" not in conv(msgs(USER, n=1))
    e = bad(msgs(USER, n=2), "n")
    assert "n must be 1" in e.message


def test_unknown_and_openai_only_fields_ignored():
    out = conv(
        msgs(
            USER,
            seed=1,
            logprobs=True,
            top_logprobs=2,
            logit_bias={"1": 2},
            presence_penalty=0.1,
            frequency_penalty=0.1,
            store=True,
            verbosity="low",
            prompt_cache_key="k",
            modalities=["text"],
            prediction={"type": "content", "content": "x"},
            orq={"fallbacks": [{"model": "aws/x"}]},
            stream_options={"include_usage": True},
            something_new={"x": 1},
        )
    )
    assert out == conv(msgs(USER))


def test_stream_flag_kept():
    assert conv(msgs(USER, stream=True))["stream"] is True
    assert conv(msgs(USER, stream=False))["stream"] is False


def test_service_tier():
    assert conv(msgs(USER, service_tier="priority"))["service_tier"] == "auto"
    assert conv(msgs(USER, service_tier="flex"))["service_tier"] == "standard_only"
    assert "service_tier" not in conv(msgs(USER, service_tier="scale"))


# ---------------------------------------------------------------- tools


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
WEATHER_OUT = {
    "name": "get_weather",
    "description": "Weather by city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_function_tools():
    out = conv(
        msgs(
            USER,
            tools=[
                WEATHER,
                {"type": "function", "function": {"name": "noargs"}, "cache_control": {"type": "ephemeral"}},
                {"type": "function", "function": {"name": "s", "parameters": {"properties": {}}, "strict": True}},
            ],
        )
    )
    assert out["tools"] == [
        WEATHER_OUT,
        {
            "name": "noargs",
            "input_schema": {"type": "object", "properties": {}},
            "cache_control": {"type": "ephemeral"},
        },
        {"name": "s", "input_schema": {"properties": {}, "type": "object"}, "strict": True},
    ]
    assert "tool_choice" not in out


def test_anthropic_tools_pass_through_and_bad_tools_400():
    native = [{"name": "x", "input_schema": {"type": "object"}}, {"type": "web_search_20250305", "name": "web_search"}]
    assert conv(msgs(USER, tools=native))["tools"] == native
    bad(msgs(USER, tools=[{"type": "custom", "custom": {"name": "raw"}}]), "tools[0].type")
    bad(msgs(USER, tools=[{"type": "function", "function": {"name": "bad name"}}]), "tools[0].function.name")


@pytest.mark.parametrize(
    "choice,expected",
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
        ({"type": "any"}, {"type": "any"}),
    ],
)
def test_tool_choice(choice, expected):
    assert conv(msgs(USER, tools=[WEATHER], tool_choice=choice))["tool_choice"] == expected


def test_tool_choice_invalid_and_without_tools():
    bad(msgs(USER, tools=[WEATHER], tool_choice="sometimes"), "tool_choice")
    assert "tool_choice" not in conv(msgs(USER, tool_choice="required"))


def test_allowed_tools_filters():
    other = {"type": "function", "function": {"name": "other"}}
    out = conv(
        msgs(
            USER,
            tools=[WEATHER, other],
            tool_choice={
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "function", "function": {"name": "get_weather"}}],
                },
            },
        )
    )
    assert out["tools"] == [WEATHER_OUT]
    assert out["tool_choice"] == {"type": "any"}


def test_parallel_tool_calls_false():
    out = conv(msgs(USER, tools=[WEATHER], parallel_tool_calls=False))
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    out = conv(msgs(USER, tools=[WEATHER], parallel_tool_calls=False, tool_choice="required"))
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    out = conv(msgs(USER, tools=[WEATHER], parallel_tool_calls=False, tool_choice="none"))
    assert out["tool_choice"] == {"type": "none"}
    assert "tool_choice" not in conv(msgs(USER, tools=[WEATHER], parallel_tool_calls=True))


# ---------------------------------------------------------------- response_format


def test_response_format_json_schema():
    schema = {
        "type": "object",
        "properties": {"a": {"type": "object", "properties": {}}, "b": {"type": "array", "items": {"type": "object"}}},
        "additionalProperties": True,
    }
    out = conv(msgs(USER, response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}))
    assert out["output_config"] == {
        "format": {
            "type": "json_schema",
            "schema": {
                "type": "object",
                "additionalProperties": True,
                "properties": {
                    "a": {"type": "object", "properties": {}, "additionalProperties": False},
                    "b": {"type": "array", "items": {"type": "object", "additionalProperties": False}},
                },
            },
        }
    }
    assert "system" not in out


def test_response_format_json_object_and_text():
    out = conv(msgs({"role": "system", "content": "S"}, USER, response_format={"type": "json_object"}))
    assert out["system"] == [{"type": "text", "text": "S"}, {"type": "text", "text": JSON_OBJECT_INSTRUCTION}]
    assert "output_config" not in out
    assert conv(msgs(USER, response_format={"type": "text"})) == conv(msgs(USER))
    bad(msgs(USER, response_format={"type": "yaml"}), "response_format.type")


# ---------------------------------------------------------------- thinking


def test_reasoning_effort_budget_model():
    # The one effort table of both OpenAI surfaces (dialects/effort.py): the same budgets as on /v1/responses.
    table = [("minimal", 1024), ("low", 2048), ("medium", 8192), ("high", 16384), ("xhigh", 32768)]
    assert all(EFFORT_BUDGET[e] == b for e, b in table)
    for effort, budget in table:
        out = conv(msgs(USER, reasoning_effort=effort, max_tokens=40000))
        assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
        assert out["max_tokens"] == 40000
        assert "output_config" not in out
    assert "thinking" not in conv(msgs(USER, reasoning_effort="none"))
    bad(msgs(USER, reasoning_effort="extreme"), "reasoning_effort")


def test_reasoning_effort_adaptive_model():
    for effort, level in [
        ("minimal", "low"),
        ("low", "low"),
        ("medium", "medium"),
        ("high", "high"),
        ("xhigh", "xhigh"),
        ("max", "max"),
    ]:
        out = conv(msgs(USER, reasoning_effort=effort), ADAPTIVE)
        assert out["thinking"] == {"type": "adaptive"}
        assert out["output_config"] == {"effort": level}
    out = conv(msgs(USER, reasoning_effort="none"), ADAPTIVE)
    assert "thinking" not in out and "output_config" not in out


def test_reasoning_effort_ignored_without_thinking_support():
    out = conv(msgs(USER, reasoning_effort="medium"), ChatOptions(upstream_model="claude-3-5-haiku", thinking_types=()))
    assert "thinking" not in out


def test_max_tokens_raised_above_budget():
    out = conv(msgs(USER, reasoning_effort="high", max_tokens=1000))
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    assert out["max_tokens"] == 17384
    clamp = ChatOptions(upstream_model="x", max_output_tokens=6000)
    out = conv(msgs(USER, thinking={"type": "enabled", "budget_tokens": 8000}, max_tokens=2048), clamp)
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 3000}
    assert out["max_tokens"] == 6000
    bad(
        msgs(USER, thinking={"type": "enabled", "budget_tokens": 8000}),
        "max_tokens",
        ChatOptions(upstream_model="x", max_output_tokens=1500),
    )


def test_thinking_passthrough_and_conversion():
    th = {"type": "enabled", "budget_tokens": 8000}
    assert conv(msgs(USER, thinking=th, max_tokens=2048))["thinking"] == th
    out = conv(msgs(USER, thinking=th, max_tokens=2048), ADAPTIVE)
    assert out["thinking"] == {"type": "adaptive"} and out["max_tokens"] == 2048
    out = conv(
        msgs(USER, thinking={"type": "enabled", "budget_tokens": 8000, "display": "omitted"}, reasoning_effort="low"),
        ADAPTIVE,
    )
    assert out["thinking"] == {"type": "adaptive", "display": "omitted"}
    assert out["output_config"] == {"effort": "low"}
    out = conv(msgs(USER, thinking={"type": "adaptive"}, reasoning_effort="medium", max_tokens=10000))
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert conv(msgs(USER, thinking={"type": "adaptive"}), BOTH)["thinking"] == {"type": "adaptive"}
    assert conv(msgs(USER, thinking={"type": "disabled"}, temperature=0.2)) == {
        **conv(msgs(USER)),
        "thinking": {"type": "disabled"},
        "temperature": 0.2,
    }


def test_thinking_errors():
    bad(msgs(USER, thinking={"type": "enabled"}), "thinking.budget_tokens")
    bad(msgs(USER, thinking={"type": "enabled", "budget_tokens": 100}), "thinking.budget_tokens")
    bad(msgs(USER, thinking={"type": "on"}), "thinking.type")
    bad(
        msgs(USER, thinking={"type": "enabled", "budget_tokens": 2000}),
        "thinking",
        ChatOptions(upstream_model="x", thinking_types=()),
    )


def test_thinking_drops_sampling_and_skips_exclusive_check():
    out = conv(msgs(USER, temperature=0.5, top_p=0.9, top_k=4, thinking={"type": "enabled", "budget_tokens": 1024}))
    assert not {"temperature", "top_p", "top_k"} & out.keys()


# ---------------------------------------------------------------- reasoning replay

SIG = "EqQBCkgIARABGAIiQL2UoU0b1OHYi+sig=="
THINK = {"type": "thinking", "thinking": "Two calls needed.", "signature": SIG}
REDACTED = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}


def assistant_content(msg: dict) -> list:
    return conv(msgs(USER, msg, {"role": "user", "content": "go"}))["messages"][1]["content"]


def test_thinking_blocks_field_first():
    content = assistant_content(
        {
            "role": "assistant",
            "content": "answer",
            "thinking_blocks": [THINK, REDACTED],
            "reasoning_content": "Two calls needed.",
        }
    )
    assert content == [THINK, REDACTED, {"type": "text", "text": "answer"}]


def test_reasoning_content_parts_orq_and_litellm():
    content = assistant_content(
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "answer"},
                {"type": "reasoning", "reasoning": "Two calls needed.", "signature": SIG},
                {"type": "redacted_reasoning", "data": REDACTED["data"]},
            ],
        }
    )
    assert content == [THINK, REDACTED, {"type": "text", "text": "answer"}]
    content = assistant_content({"role": "assistant", "content": [THINK, {"type": "text", "text": "x"}]})
    assert content == [THINK, {"type": "text", "text": "x"}]


def test_flat_orq_fields():
    content = assistant_content(
        {
            "role": "assistant",
            "content": "answer",
            "reasoning": "Two calls needed.",
            "reasoning_signature": SIG,
            "redacted_reasoning": REDACTED["data"],
        }
    )
    assert content == [THINK, REDACTED, {"type": "text", "text": "answer"}]


def test_ordered_blocks_preferred_over_flat_never_duplicated():
    content = assistant_content(
        {
            "role": "assistant",
            "content": [
                {"type": "reasoning", "reasoning": "Two calls needed.", "signature": SIG},
                {"type": "text", "text": "a"},
            ],
            "thinking_blocks": [THINK],
            "reasoning": "Two calls needed.",
            "reasoning_signature": SIG,
            "redacted_reasoning": "other",
        }
    )
    assert content == [THINK, {"type": "text", "text": "a"}]


def test_unsigned_reasoning_dropped():
    content = assistant_content(
        {
            "role": "assistant",
            "content": [
                {"type": "reasoning", "reasoning": "no sig"},
                {"type": "thinking", "thinking": "x", "signature": ""},
                {"type": "text", "text": "a"},
            ],
            "reasoning": "flat without signature",
            "reasoning_content": "x",
        }
    )
    assert content == [{"type": "text", "text": "a"}]


def test_reasoning_before_tool_use_and_signature_unchanged():
    content = assistant_content(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            "thinking_blocks": [{**THINK, "cache_control": {"type": "ephemeral"}}],
        }
    )
    assert content == [THINK, {"type": "tool_use", "id": "call_1", "name": "f", "input": {}}]
    assert content[0]["signature"] is not None and content[0]["signature"] == SIG


# ---------------------------------------------------------------- legacy functions


def test_legacy_function_call_and_function_message():
    out = conv(
        msgs(
            USER,
            {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": '{"x":1}'}},
            {"role": "function", "name": "f", "content": "done"},
        )
    )
    assert out["messages"][1:] == [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_f_1", "name": "f", "input": {"x": 1}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_f_1", "content": "done"}]},
    ]
    bad(msgs(USER, {"role": "function", "name": "g", "content": "x"}), "messages[1].name")


# ---------------------------------------------------------------- the spec's worked example (D.5)


def test_spec_worked_example_d5():
    body = {
        "model": "claude-sonnet-4-6",
        "max_completion_tokens": 2048,
        "temperature": 1.4,
        "parallel_tool_calls": False,
        "stop": ["\n\nEND"],
        "reasoning_effort": "medium",
        "user": "u-42",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {
                "role": "developer",
                "content": [{"type": "text", "text": "Cite files.", "cache_control": {"type": "ephemeral"}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather in Paris and Rome?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0...", "detail": "high"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                    },
                ],
                "thinking_blocks": [{"type": "thinking", "thinking": "Two calls needed.", "signature": "EqQB..."}],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": "22C cloudy"},
            {"role": "user", "content": "Now compare."},
        ],
        "tools": [WEATHER],
    }
    expected = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 2048,
        "system": [
            {"type": "text", "text": "You are terse."},
            {"type": "text", "text": "Cite files.", "cache_control": {"type": "ephemeral"}},
        ],
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "medium"},
        "stop_sequences": ["\n\nEND"],
        "metadata": {"user_id": "u-42"},
        "tools": [WEATHER_OUT],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather in Paris and Rome?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0..."}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Two calls needed.", "signature": "EqQB..."},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Rome"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18C sunny"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "22C cloudy"},
                    {"type": "text", "text": "Now compare."},
                ],
            },
        ],
    }
    assert (
        conv(body, ChatOptions(upstream_model="claude-sonnet-4-6", thinking_types=("enabled", "adaptive"))) == expected
    )
    budget = conv(body, ChatOptions(upstream_model="claude-sonnet-4-6"))
    assert budget["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert budget["max_tokens"] == 10240 and "output_config" not in budget and "temperature" not in budget


def test_non_dict_body_and_bad_message():
    with pytest.raises(InvalidRequest):
        to_anthropic([], OPTS)  # type: ignore[arg-type]
    bad(msgs("hello"), "messages[0].role")  # type: ignore[arg-type]


def test_thinking_left_out_when_tool_loop_lost_its_thinking_blocks():
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    loop = [
        USER,
        {"role": "assistant", "content": "ok", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "r"},
    ]
    out = conv(msgs(*loop, reasoning_effort="high", temperature=0.5), BOTH)
    assert "thinking" not in out and "output_config" not in out and out["temperature"] == 0.5
    loop[1] = {**loop[1], "thinking_blocks": [THINK]}
    assert conv(msgs(*loop, reasoning_effort="high"), BOTH)["thinking"] == {"type": "adaptive"}
    loop.append({"role": "user", "content": "new question"})
    assert "thinking" in conv(
        msgs(*loop[:2], {"role": "user", "content": "new question"}, reasoning_effort="high"), BOTH
    )
