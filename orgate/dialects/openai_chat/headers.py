"""Response headers an OpenAI client may act on (request id, retry hints, rate-limit state)."""

from __future__ import annotations

OPENAI_RELAYED = ("x-request-id", "retry-after", "retry-after-ms", "x-should-retry", "openai-processing-ms")
OPENAI_PREFIXES = ("x-ratelimit-",)


def openai_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k in OPENAI_RELAYED or k.startswith(OPENAI_PREFIXES)}
