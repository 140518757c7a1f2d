"""OpenAI Chat Completions upstreams (`openai`, `openai_compatible`: vLLM, Ollama, LM Studio, any such server).

These serve non-Claude models on the OpenAI surface only: the client's chat body goes to
`{base_url}/chat/completions` with the model id replaced and the provider's own key as a bearer token, and
the answer (JSON or SSE) comes back as the server sent it. `base_url` is the OpenAI-style base including
`/v1` (`https://api.openai.com/v1`, `http://localhost:11434/v1`). They are not Claude upstreams: asked for an
Anthropic Messages call they refuse, and the router never mixes them into a Claude route.
"""

from __future__ import annotations

from typing import Any

from orgate.config import Provider, RoutingSettings
from orgate.errors import GatewayError
from orgate.upstreams import http
from orgate.upstreams.base import UpstreamCall, UpstreamResponse, raise_answer

OPENAI_BASE_URL = "https://api.openai.com/v1"


class OpenAICompatUpstream:
    def __init__(self, name: str, provider: Provider, routing: RoutingSettings) -> None:
        self.name = name
        self.type = provider.type
        base = provider.base_url or (OPENAI_BASE_URL if provider.type == "openai" else None)
        if not base:
            raise ValueError(f"providers.{name}.base_url: required for an openai_compatible provider")
        self.base_url = base.rstrip("/")
        self._api_key = provider.api_key or ""
        t = provider.timeouts
        self.connect_timeout = t.get("connect", routing.connect_timeout)
        self.first_byte_timeout = t.get("first_byte", routing.first_byte_timeout)
        self.idle_timeout = t.get("idle", routing.idle_timeout)

    def _headers(self, stream: bool) -> dict[str, str]:
        h = {"content-type": "application/json", "accept-encoding": "identity",
             "accept": "text/event-stream" if stream else "application/json"}
        if self._api_key:
            h["authorization"] = f"Bearer {self._api_key}"
        return h

    async def chat(self, data: bytes, stream: bool) -> http.HttpResponse:
        """POST /chat/completions with a body already carrying the upstream model id; a non-2xx answer is
        raised as UpstreamError with OpenAI's type, message, param and code unchanged."""
        resp = await http.post(f"{self.base_url}/chat/completions", data, self._headers(stream),
                               connect=self.connect_timeout, read=self.first_byte_timeout,
                               idle=self.idle_timeout if stream else None)
        if resp.status >= 400:
            await raise_answer(resp, self.name)
        return resp

    async def messages(self, call: UpstreamCall) -> UpstreamResponse:
        raise GatewayError(f"provider '{self.name}' serves OpenAI chat completions, not Anthropic Messages",
                           status=400, kind="invalid_request_error")

    async def count_tokens(self, call: UpstreamCall) -> UpstreamResponse:
        return await self.messages(call)

    async def aclose(self) -> None:
        return None


def chat_body(body: dict[str, Any], model: str, *, meter_stream: bool) -> dict[str, Any]:
    """The client's chat body for the upstream: model replaced, gateway-only fields removed, and usage
    asked for on streams (`stream_options.include_usage`) so a streamed request can be billed."""
    out = {k: v for k, v in body.items() if k not in ("fallbacks", "orq")}
    out["model"] = model
    if meter_stream and out.get("stream"):
        opts = out.get("stream_options") if isinstance(out.get("stream_options"), dict) else {}
        out["stream_options"] = {**opts, "include_usage": True}
    return out
