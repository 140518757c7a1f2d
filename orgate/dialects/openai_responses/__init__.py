"""OpenAI Responses API dialect (`POST /v1/responses`, what Codex CLI speaks) <-> Anthropic Messages hub.

Pure translators: no I/O, no logging, no globals, inputs never mutated.

- request.to_anthropic: Responses request body -> (Anthropic body, anthropic-beta values).
- response.from_anthropic: Anthropic Message -> Responses `response` object.
- stream.ResponsesStreamEncoder: Anthropic SSE event dicts -> Responses SSE bytes.
- envelope.ReasoningEnvelope: signed thinking blocks <-> reasoning `encrypted_content`.
- errors.error_body: OpenAI-shaped error bodies.

Ignored request fields (documented no-ops): prompt_cache_key, client_metadata, metadata (echoed back
only), store (orgate never stores; history must be sent in full), include (encrypted_content is always
populated), text.verbosity, service_tier, truncation, background, max_tool_calls, top_logprobs,
stream_options, prompt_cache_retention, moderation. `user` / `safety_identifier` -> metadata.user_id.
"""

from orgate.dialects.openai_responses.envelope import ReasoningEnvelope
from orgate.dialects.openai_responses.errors import error_body
from orgate.dialects.openai_responses.request import ResponsesOptions, to_anthropic
from orgate.dialects.openai_responses.response import from_anthropic
from orgate.dialects.openai_responses.stream import ResponsesStreamEncoder

__all__ = [
    "ReasoningEnvelope",
    "ResponsesOptions",
    "ResponsesStreamEncoder",
    "error_body",
    "from_anthropic",
    "to_anthropic",
]
