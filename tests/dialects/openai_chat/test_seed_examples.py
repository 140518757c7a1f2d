"""Every OpenAI-format request example of the orq.ai Anthropic router docs (seed 004), translated."""

from __future__ import annotations

import copy
import json

import pytest

from orgate.dialects.openai_chat.request import ChatOptions, to_anthropic
from tests.paths import CLIENT_CAPTURES

SONNET = ChatOptions(upstream_model="claude-sonnet-4-5-20250929")
OPUS = ChatOptions(upstream_model="claude-opus-4-5-20251101")
OPENCODE = CLIENT_CAPTURES / "opencode_chat_write.json"


def conv(body: dict, opts: ChatOptions = SONNET) -> dict:
    frozen = copy.deepcopy(body)
    out, betas = to_anthropic(body, opts)
    assert body == frozen and betas == []
    return out


def user(text: str) -> dict:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def test_quick_start_and_curl_chat_completion():
    body = {
        "model": "anthropic/claude-sonnet-4-5-20250929",
        "messages": [{"role": "user", "content": "Explain quantum computing in simple terms"}],
        "max_tokens": 1024,
    }
    assert conv(body) == {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 1024,
        "messages": [user("Explain quantum computing in simple terms")],
    }


def test_streaming():
    body = {
        "model": "anthropic/claude-sonnet-4-5-20250929",
        "messages": [{"role": "user", "content": "Tell me a story"}],
        "max_tokens": 2048,
        "stream": True,
    }
    assert conv(body) == {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 2048,
        "stream": True,
        "messages": [user("Tell me a story")],
    }


@pytest.mark.parametrize(
    "system_text",
    [
        "You are an expert Python developer with deep knowledge of best practices.",
        "You are an expert software engineer specializing in Python.\nYour responses should be:\n- Clear and concise\n"
        "- Include code examples\n- Follow PEP 8 style guidelines\n- Include error handling",
    ],
)
def test_prompt_caching_system_blocks(system_text):
    body = {
        "model": "anthropic/claude-sonnet-4-5-20250929",
        "max_tokens": 1024,
        "messages": [
            {
                "role": "system",
                "content": [{"type": "text", "text": system_text, "cache_control": {"type": "ephemeral"}}],
            },
            {"role": "user", "content": "Write a function to parse JSON"},
        ],
    }
    assert conv(body) == {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": system_text, "cache_control": {"type": "ephemeral"}}],
        "messages": [user("Write a function to parse JSON")],
    }


def test_cache_ttl_option():
    body = {
        "model": "x",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "big", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            }
        ],
    }
    assert conv(body)["messages"][0]["content"] == [
        {"type": "text", "text": "big", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]


def test_cache_large_documents():
    body = {
        "model": "anthropic/claude-sonnet-4-5-20250929",
        "max_tokens": 1024,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "Here is our API documentation:\n\n[Large documentation content here...]",
                        "cache_control": {"type": "ephemeral"},
                    },
                    {"type": "text", "text": "How do I authenticate with the API?"},
                ],
            }
        ],
    }
    assert conv(body)["messages"] == [
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "Here is our API documentation:\n\n[Large documentation content here...]",
                    "cache_control": {"type": "ephemeral"},
                },
                {"type": "text", "text": "How do I authenticate with the API?"},
            ],
        }
    ]


def test_cache_conversation_history():
    body = {
        "model": "anthropic/claude-sonnet-4-5-20250929",
        "max_tokens": 1024,
        "messages": [
            {"role": "user", "content": "What is Python?"},
            {"role": "assistant", "content": "Python is a high-level programming language..."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What are its main features?", "cache_control": {"type": "ephemeral"}}
                ],
            },
            {"role": "assistant", "content": "Pythons main features include..."},
            {"role": "user", "content": "Can you give me a code example?"},
        ],
    }
    assert conv(body)["messages"] == [
        user("What is Python?"),
        {"role": "assistant", "content": [{"type": "text", "text": "Python is a high-level programming language..."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What are its main features?", "cache_control": {"type": "ephemeral"}}
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "Pythons main features include..."}]},
        user("Can you give me a code example?"),
    ]


def test_cache_rag_context():
    body = {
        "model": "anthropic/claude-sonnet-4-5-20250929",
        "max_tokens": 1024,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant that answers based on provided context."},
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "Context:\n[Retrieved document content here...]",
                        "cache_control": {"type": "ephemeral"},
                    },
                    {"type": "text", "text": "Question: What is the main topic of these documents?"},
                ],
            },
        ],
    }
    out = conv(body)
    assert out["system"] == [
        {"type": "text", "text": "You are a helpful assistant that answers based on provided context."}
    ]
    assert out["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}


def test_extended_thinking_curl():
    body = {
        "model": "anthropic/claude-opus-4-5-20251101",
        "messages": [{"role": "user", "content": "Design a distributed rate limiting system for 1M requests/second"}],
        "thinking": {"type": "enabled", "budget_tokens": 8000},
        "max_tokens": 2048,
    }
    assert conv(body, OPUS) == {
        "model": "claude-opus-4-5-20251101",
        "max_tokens": 10048,
        "thinking": {"type": "enabled", "budget_tokens": 8000},
        "messages": [user("Design a distributed rate limiting system for 1M requests/second")],
    }


def test_extended_thinking_multi_turn_follow_up():
    """The docs' JS: map msg.reasoning / reasoning_signature / redacted_reasoning / content into parts."""
    msg = {
        "role": "assistant",
        "content": "Use a token bucket.",
        "reasoning": "Consider sliding windows.",
        "reasoning_signature": "EqQBCkgIARAB-sig",
        "redacted_reasoning": "EmwKAhgBEgy-redacted",
    }
    parts = [
        {"type": "reasoning", "reasoning": msg["reasoning"], "signature": msg["reasoning_signature"]},
        {"type": "redacted_reasoning", "data": msg["redacted_reasoning"]},
        {"type": "text", "text": msg["content"]},
    ]
    body = {
        "model": "anthropic/claude-opus-4-5-20251101",
        "messages": [
            {"role": "user", "content": "Design a rate limiting system"},
            {"role": "assistant", "content": parts},
            {"role": "user", "content": "How would you handle 10M req/s?"},
        ],
        "thinking": {"type": "enabled", "budget_tokens": 8000},
        "max_tokens": 2048,
    }
    assert conv(body, OPUS) == {
        "model": "claude-opus-4-5-20251101",
        "max_tokens": 10048,
        "thinking": {"type": "enabled", "budget_tokens": 8000},
        "messages": [
            user("Design a rate limiting system"),
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Consider sliding windows.", "signature": "EqQBCkgIARAB-sig"},
                    {"type": "redacted_thinking", "data": "EmwKAhgBEgy-redacted"},
                    {"type": "text", "text": "Use a token bucket."},
                ],
            },
            user("How would you handle 10M req/s?"),
        ],
    }


def test_thinking_with_cached_system_no_max_tokens():
    body = {
        "model": "anthropic/claude-opus-4-5-20251101",
        "messages": [
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "You are a system architect...", "cache_control": {"type": "ephemeral"}}
                ],
            },
            {"role": "user", "content": "Design a notification system"},
        ],
        "thinking": {"type": "enabled", "budget_tokens": 8000},
    }
    out = conv(body, OPUS)
    assert out["system"] == [
        {"type": "text", "text": "You are a system architect...", "cache_control": {"type": "ephemeral"}}
    ]
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 8000}
    assert out["max_tokens"] == 8000 + 4096  # default 4096 would not exceed the budget


def test_vision_url_and_base64():
    b64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    for url, source in [
        ("https://example.com/image.jpg", {"type": "url", "url": "https://example.com/image.jpg"}),
        (f"data:image/jpeg;base64,{b64}", {"type": "base64", "media_type": "image/jpeg", "data": b64}),
    ]:
        body = {
            "model": "anthropic/claude-sonnet-4-5-20250929",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What's in this image?"},
                        {"type": "image_url", "image_url": {"url": url}},
                    ],
                }
            ],
        }
        assert conv(body) == {
            "model": "claude-sonnet-4-5-20250929",
            "max_tokens": 4096,
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "What's in this image?"}, {"type": "image", "source": source}],
                }
            ],
        }


def test_pdf_document_part():
    body = {
        "model": "anthropic/claude-opus-4-5-20251101",
        "max_tokens": 2048,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Summarize this document"},
                    {"type": "document", "document": {"type": "pdf", "url": "https://example.com/document.pdf"}},
                ],
            }
        ],
    }
    assert conv(body, OPUS)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Summarize this document"},
                {"type": "document", "source": {"type": "url", "url": "https://example.com/document.pdf"}},
            ],
        }
    ]


def test_tool_use():
    body = {
        "model": "anthropic/claude-sonnet-4-5-20250929",
        "messages": [{"role": "user", "content": "What's the weather in Tokyo?"}],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Get current weather for a location",
                    "parameters": {
                        "type": "object",
                        "properties": {"location": {"type": "string"}},
                        "required": ["location"],
                    },
                },
            }
        ],
    }
    assert conv(body) == {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 4096,
        "tools": [
            {
                "name": "get_weather",
                "description": "Get current weather for a location",
                "input_schema": {
                    "type": "object",
                    "properties": {"location": {"type": "string"}},
                    "required": ["location"],
                },
            }
        ],
        "messages": [user("What's the weather in Tokyo?")],
    }


def test_fallbacks_extension_is_not_forwarded():
    body = {
        "model": "anthropic/claude-sonnet-4-5-20250929",
        "messages": [{"role": "user", "content": "..."}],
        "orq": {
            "fallbacks": [
                {"model": "aws/anthropic/claude-sonnet-4-5-20250929"},
                {"model": "anthropic/claude-opus-4-5-20251101"},
            ]
        },
    }
    assert conv(body) == {"model": "claude-sonnet-4-5-20250929", "max_tokens": 4096, "messages": [user("...")]}


def test_temperature_and_top_p_together_is_a_clear_400():
    from orgate.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="temperature and top_p cannot both be specified"):
        to_anthropic(
            {"model": "x", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.7, "top_p": 0.9}, SONNET
        )


@pytest.mark.skipif(not OPENCODE.exists(), reason="recorded OpenCode traffic not available")
def test_opencode_recorded_requests():
    bodies = [e["body"] for e in json.loads(OPENCODE.read_text())]
    title, turn, after_tool = (conv(b, SONNET) for b in bodies)
    assert title["stream"] is True and title["max_tokens"] == 8192
    assert len(title["system"]) == 1 and title["messages"][0]["role"] == "user"
    assert [b["text"] for b in title["messages"][0]["content"]] == [
        "Generate a title for this conversation:\n",
        '"Create a file named hello.txt containing exactly: hi"',
    ]
    assert turn["thinking"] == {"type": "enabled", "budget_tokens": 8192}  # EFFORT_BUDGET["medium"]
    assert turn["tool_choice"] == {"type": "auto"}
    assert all("input_schema" in t and t["input_schema"]["type"] == "object" for t in turn["tools"])
    assert "thinking" not in after_tool  # OpenCode dropped the thinking blocks: Anthropic would refuse the turn
    assert after_tool["messages"][1]["content"] == [
        {"type": "text", "text": "I'll create hello.txt now."},
        {
            "type": "tool_use",
            "id": "call_DbfbLOlS4JzzE0P9wntdp8Ry",
            "name": "bash",
            "input": {"command": "printf '%s' 'hi' > hello.txt", "workdir": "<workdir>/opencode_chat_write/work"},
        },
    ]
    assert after_tool["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "call_DbfbLOlS4JzzE0P9wntdp8Ry", "content": "(no output)"}],
    }
