"""The OpenAI Chat Completions dialect: pure translators to and from the Anthropic Messages hub format."""

from orgate.dialects.openai_chat.errors import OPENAI_TYPES, error_body
from orgate.dialects.openai_chat.request import ChatOptions, to_anthropic
from orgate.dialects.openai_chat.response import from_anthropic
from orgate.dialects.openai_chat.stream import ChatStreamEncoder

__all__ = ["OPENAI_TYPES", "ChatOptions", "ChatStreamEncoder", "error_body", "from_anthropic", "to_anthropic"]
