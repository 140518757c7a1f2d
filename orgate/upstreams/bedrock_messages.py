"""Claude on Bedrock's Messages API ("Claude in Amazon Bedrock"): the Anthropic request, SSE and errors.

Anthropic's docs split Bedrock in two (platform.claude.com/docs/en/build-with-claude/claude-in-amazon-bedrock
and .../claude-on-amazon-bedrock-legacy, read 2026-12-02): models from Claude Opus 4.7 on are served by the
Messages API at `/anthropic/v1/messages` with SSE streaming; InvokeModel/Converse with ARN-versioned ids is
the legacy integration for Opus 4.6 and earlier. Which one a request takes (`MessagesApi.serves`): the
provider's `api` (`messages` | `invoke`; `auto` by default), else the model's catalog `bedrock_api`, else
its id (a Claude id without an ARN version suffix, Opus 4.7 or later by version, is a Messages-API model).

Two hosts serve the Messages API (AWS, "Inference using Anthropic Messages API",
docs.aws.amazon.com/bedrock/latest/userguide/inference-messages-api.html):
- bedrock-runtime: `https://bedrock-runtime.{region}.amazonaws.com/anthropic/v1/messages`, SigV4 for service
  `bedrock` (inferred: the name runtime's other routes are signed for) or a Bedrock API key;
- bedrock-mantle: `https://bedrock-mantle.{region}.api.aws/anthropic/v1/messages`, SigV4 for service
  `bedrock-mantle` (anthropic-sdk-python lib/bedrock/_mantle.py: DEFAULT_SERVICE_NAME) or a Bedrock API key.
The request is the first-party one: `model` (the Bedrock id, as configured) and `stream` in the body,
`anthropic-version` and `anthropic-beta` as headers. The client's bytes go out with only the model spliced in
unless a beta Bedrock does not take forces a body edit (upstreams/betas.py, the Bedrock table) or
`metadata.user_id` is outside Bedrock's request-metadata pattern (then its SHA-256 hex goes instead). An API key
goes as `Authorization: Bearer` (what the SDK's Mantle client sends). A 2xx stream is relayed byte for byte;
errors, Anthropic-shaped or AWS-shaped (`{"message"}` + `x-amzn-errortype`), become Anthropic errors.

Token counting: AWS documents the Anthropic `count_tokens` path on bedrock-mantle as the only one for Claude
models not served on a Region-specific bedrock-runtime endpoint (same page, "Count tokens"), so a
Messages-API model counts on mantle in the provider's region (its id without the geography prefix),
whichever host serves its messages.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import orjson

from orgate.config import Provider
from orgate.dialects.anthropic.body import with_model
from orgate.errors import UpstreamError
from orgate.upstreams import http
from orgate.upstreams.base import BufferedResponse, UpstreamCall, UpstreamResponse
from orgate.upstreams.bedrock import PROFILE_PREFIX, RelayedResponse, _loads, aws_headers, mapped_error
from orgate.upstreams.betas import BetaPolicy, split
from orgate.upstreams.sigv4 import AwsAuth

if TYPE_CHECKING:
    from orgate.config import Settings

MESSAGES_PATH = "/anthropic/v1/messages"
COUNT_PATH = "/anthropic/v1/messages/count_tokens"
# A legacy (ARN-versioned) id: a date or a `-v1` / `-v1:0` version (`anthropic.claude-opus-4-6-v1`).
_VERSIONED = re.compile(r"-\d{8}|-v\d+(?::\d+)?$")
_CLAUDE = re.compile(r"^anthropic\.claude-[a-z]+-(\d+)(?:-(\d+))?")
FIRST_MESSAGES_VERSION = (4, 7)  # Claude Opus 4.7: the first model on the Messages-API endpoint
# What Bedrock takes as a request-metadata value (its Converse `requestMetadata` constraint, quoted in
# agentgateway/agentgateway#1739; a third-party run reports runtime's /anthropic route refusing Claude Code's
# JSON-string `metadata.user_id` with the same "violates the regular expression" error).
USER_ID_PATTERN = re.compile(r"[a-zA-Z0-9\s:_@$#=/+,.-]{0,256}")


def base_model_id(model: str) -> str:
    """`arn:…:inference-profile/us.anthropic.claude-opus-5` and `us.anthropic.claude-opus-5` -> `anthropic.claude-opus-5`."""
    return PROFILE_PREFIX.sub("", model.rsplit("/", 1)[-1])


def catalog_apis(settings: Settings) -> dict[str, str]:
    """Base Bedrock id -> `messages` | `invoke`, from the models whose catalog entry says: an entry's Bedrock
    deployments over any entry's `provider_ids.bedrock` (a deployment is the operator's own choice)."""
    named: dict[str, str] = {}
    deployed: dict[str, str] = {}
    for entry in settings.models.values():
        if entry.bedrock_api is None:
            continue
        if entry.provider_ids.get("bedrock"):
            named.setdefault(base_model_id(entry.provider_ids["bedrock"]), entry.bedrock_api)
        for d in entry.deployments:
            if d.provider in settings.providers and settings.providers[d.provider].type == "bedrock":
                deployed.setdefault(base_model_id(d.model), entry.bedrock_api)
    return {**named, **deployed}


def messages_api_by_id(model: str) -> bool:
    base = base_model_id(model)
    m = _CLAUDE.match(base)
    if m is None or _VERSIONED.search(base):
        return False  # an application profile or provisioned ARN, another vendor, or an ARN-versioned id
    return (int(m.group(1)), int(m.group(2) or 0)) >= FIRST_MESSAGES_VERSION


def _failed(status: int, kind: str, message: str, headers: Mapping[str, str], provider: str) -> UpstreamError:
    return UpstreamError(message, status=status, kind=kind, headers=aws_headers(dict(headers)), provider=provider,
                         answered=True)


class MessagesApi:
    """The Messages-API side of a Bedrock provider."""

    def __init__(self, name: str, provider: Provider, region: str, runtime_url: str, runtime_auth: AwsAuth,
                 betas: BetaPolicy, model_apis: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.mode = provider.api
        self.model_apis = dict(model_apis or {})
        self.mantle_url = (provider.mantle_base_url or f"https://bedrock-mantle.{region}.api.aws").rstrip("/")
        endpoint = provider.messages_endpoint
        if endpoint is None:
            endpoint = "mantle" if (provider.base_url or "").split("://", 1)[-1].startswith("bedrock-mantle.") else "runtime"
        self.endpoint = endpoint
        if endpoint == "mantle" and provider.base_url and not provider.mantle_base_url:
            self.mantle_url = provider.base_url.rstrip("/")
        self.mantle_url = self.mantle_url.removesuffix("/anthropic")
        self.runtime_url = runtime_url.removesuffix("/anthropic")
        self.runtime_auth = runtime_auth
        self.mantle_auth = AwsAuth(provider, region, service="bedrock-mantle")
        self.betas = betas

    def serves(self, model: str) -> bool:
        """Whether `model` goes to the Messages API (else InvokeModel)."""
        if self.endpoint == "mantle" or self.mode == "messages":
            return True  # bedrock-mantle serves only the Messages API
        if self.mode == "invoke":
            return False
        api = self.model_apis.get(base_model_id(model))
        return api == "messages" if api is not None else messages_api_by_id(model)

    def _where(self) -> tuple[str, AwsAuth]:
        if self.endpoint == "mantle":
            return self.mantle_url, self.mantle_auth
        return self.runtime_url, self.runtime_auth

    def _request(self, call: UpstreamCall, model: str, counting: bool) -> tuple[bytes, list[str]]:
        """The body bytes and the betas to send: the client's bytes with the model spliced in unless a beta
        Bedrock does not take means a body field goes too."""
        asked = split(call.anthropic_beta)
        user_id = self._unfit_user_id(call)
        if user_id is None and all(self.betas.renamed.get(b, b) in self.betas.accepted for b in asked):
            kept, _ = self.betas.bridge(asked, {}, counting)
            return with_model(call.json, call.raw_body, call.client_model, model), kept
        kept, body = self.betas.bridge(asked, call.json(), counting)
        body = {**body, "model": model}
        if user_id is not None:
            body["metadata"] = {**body["metadata"], "user_id": hashlib.sha256(user_id.encode()).hexdigest()}
        return orjson.dumps(body), kept

    @staticmethod
    def _unfit_user_id(call: UpstreamCall) -> str | None:
        """`metadata.user_id` when Bedrock's request-metadata pattern would refuse it (Claude Code sends a JSON
        string); it goes as its SHA-256 hex: still opaque and stable per user. Read only when the bytes hold one."""
        if call.raw_body is not None and b'"user_id"' not in call.raw_body:
            return None
        meta = call.json().get("metadata")
        uid = meta.get("user_id") if isinstance(meta, dict) else None
        return uid if isinstance(uid, str) and not USER_ID_PATTERN.fullmatch(uid) else None

    @staticmethod
    def _headers(call: UpstreamCall, betas: list[str]) -> dict[str, str]:
        h = {"content-type": "application/json", "accept": "application/json", "accept-encoding": "identity",
             "anthropic-version": call.anthropic_version}
        if betas:
            h["anthropic-beta"] = ",".join(betas)
        for k, v in call.extra_headers.items():
            if k.lower().startswith("x-amzn-bedrock-"):  # guardrails, service tier, trace
                h[k.lower()] = v
        return h

    async def _post(self, base: str, path: str, auth: AwsAuth, data: bytes, headers: dict[str, str], read: float,
                    connect: float, idle: float | None = None) -> http.HttpResponse:
        url = base + path
        return await http.post(url, data, await auth.headers("POST", url, headers, data), connect=connect, read=read, idle=idle)

    async def messages(self, call: UpstreamCall, connect: float, first_byte: float, idle: float) -> UpstreamResponse:
        data, betas = self._request(call, call.target.upstream_model, counting=False)
        base, auth = self._where()
        resp = await self._post(base, MESSAGES_PATH, auth, data, self._headers(call, betas), first_byte, connect,
                                idle if call.stream else None)
        return await self._answer(resp, call.stream)

    async def count_tokens(self, call: UpstreamCall, connect: float, first_byte: float) -> UpstreamResponse:
        model = call.target.upstream_model
        if self.endpoint != "mantle":
            model = base_model_id(model)  # mantle's ids carry no geography (AWS's examples: `anthropic.claude-…`)
        data, betas = self._request(call, model, counting=True)
        resp = await self._post(self.mantle_url, COUNT_PATH, self.mantle_auth, data, self._headers(call, betas),
                                first_byte, connect)
        return await self._answer(resp, False)

    async def _answer(self, resp: http.HttpResponse, stream: bool) -> UpstreamResponse:
        if resp.status >= 300:
            raise await mapped_error(resp, self.name)
        ctype = resp.headers.get("content-type", "")
        if stream and ctype.startswith("text/event-stream"):
            return RelayedResponse(resp, {**aws_headers(resp.headers), "content-type": ctype})
        if "amazon.eventstream" in ctype:  # InvokeModel's framing: this route documents SSE
            await resp.aclose()
            raise _failed(502, "api_error", "Bedrock answered the Messages API in AWS event-stream framing", resp.headers, self.name)
        raw = await resp.read()
        obj = _loads(raw)
        output = obj.get("Output")
        name = resp.headers.get("x-amzn-errortype") or obj.get("__type") or (
            output.get("__type") if isinstance(output, dict) else None)
        if name or (obj.get("type") == "error" and isinstance(obj.get("error"), dict)):
            # An error under a 2xx (AWS answers an unknown operation this way): never relayed as a success.
            raise await mapped_error(_Buffered(404 if "UnknownOperation" in str(name) else 502, resp.headers, raw), self.name)  # type: ignore[arg-type]
        if stream:
            raise _failed(502, "api_error", f"Bedrock answered a stream with {ctype or 'no content type'}", resp.headers, self.name)
        return BufferedResponse(resp.status, {**aws_headers(resp.headers), "content-type": "application/json"}, raw)


class _Buffered:
    """A response already read, in the shape mapped_error takes."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self._body = status, headers, body

    async def read(self) -> bytes:
        return self._body
