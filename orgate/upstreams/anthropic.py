"""Anthropic's first-party API: the body goes through as the client sent it, with only the model swapped."""

from __future__ import annotations

from orgate.config import Provider, RoutingSettings
from orgate.dialects.anthropic.body import with_model
from orgate.upstreams import http
from orgate.upstreams.base import UpstreamCall, raise_answer


class AnthropicUpstream:
    def __init__(self, name: str, provider: Provider, routing: RoutingSettings) -> None:
        self.name = name
        self.base_url = (provider.base_url or "https://api.anthropic.com").rstrip("/")
        if self.base_url.endswith("/v1"):
            self.base_url = self.base_url[:-3]
        self._api_key = provider.api_key or ""
        t = provider.timeouts
        self.connect_timeout = t.get("connect", routing.connect_timeout)
        self.first_byte_timeout = t.get("first_byte", routing.first_byte_timeout)
        self.idle_timeout = t.get("idle", routing.idle_timeout)

    def _headers(self, call: UpstreamCall) -> dict[str, str]:
        h = {
            "content-type": "application/json",
            "anthropic-version": call.anthropic_version,
            "x-api-key": self._api_key,
            "accept-encoding": "identity",
        }
        if call.anthropic_beta:
            h["anthropic-beta"] = call.anthropic_beta
        h.update(call.extra_headers)
        return h

    async def messages(self, call: UpstreamCall) -> http.HttpResponse:
        data = with_model(call.json, call.raw_body, call.client_model, call.target.upstream_model, parts=True)
        # A stream's idle limit is between events; a JSON answer arrives only when generation is done.
        resp = await http.post(
            f"{self.base_url}/v1/messages", data, self._headers(call), connect=self.connect_timeout,
            read=self.first_byte_timeout, idle=self.idle_timeout if call.stream else None,
        )
        if resp.status >= 400:
            await raise_answer(resp, self.name)
        return resp

    async def count_tokens(self, call: UpstreamCall) -> http.HttpResponse:
        data = with_model(call.json, call.raw_body, call.client_model, call.target.upstream_model)
        resp = await http.post(f"{self.base_url}/v1/messages/count_tokens", data, self._headers(call),
                               connect=self.connect_timeout, read=self.first_byte_timeout)
        if resp.status >= 400:
            await raise_answer(resp, self.name)
        return resp

    async def aclose(self) -> None:
        return None
