"""Adapters raise a provider's error answer as UpstreamError; these tests keep asserting on the answer as
(status, headers, Anthropic error body), which `answered` rebuilds from the typed error's fields."""

from __future__ import annotations

from typing import Any

import orjson

from orgate.errors import UpstreamError
from orgate.upstreams.base import BufferedResponse


class answered:  # noqa: N801 - reads as a wrapper: answered(upstream)
    """An upstream whose raised UpstreamError comes back as the error answer it stands for."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def messages(self, call: Any) -> Any:
        return await self._answer(self._inner.messages(call))

    async def count_tokens(self, call: Any) -> Any:
        return await self._answer(self._inner.count_tokens(call))

    @staticmethod
    async def _answer(coro: Any) -> Any:
        try:
            return await coro
        except UpstreamError as e:
            if not e.answered:  # no answer came (transport, credentials refused before the call)
                raise
            body = {"type": "error", "error": {"type": e.kind, "message": e.message}}
            return BufferedResponse(e.status, e.headers, orjson.dumps(body))
