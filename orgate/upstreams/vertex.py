"""Claude on Google Vertex AI (`rawPredict` / `streamRawPredict`), answered in the Anthropic wire format.

Request: the Anthropic body without `model` (it is in the URL), `stream` kept, plus
`anthropic_version: vertex-2023-10-16`; betas stay in the `anthropic-beta` header, only those Vertex takes
(upstreams/betas.py). Auth is an OAuth2 access
token from a service-account / authorized-user JSON (`credentials_file`) or Application Default Credentials,
minted by google-auth off the event loop, cached, refreshed five minutes before expiry, one refresh at a time.

Response: bodies and SSE are already Anthropic-shaped. Errors are either Anthropic error bodies (type and
message kept) or Google errors `{"error":{"code","message","status"}}`, mapped through GOOGLE_STATUS; both
are raised as UpstreamError.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from orgate.config import Provider, RoutingSettings
from orgate.errors import UpstreamError, UpstreamUnavailable, cloud_status
from orgate.upstreams import http
from orgate.upstreams.base import UpstreamCall, UpstreamResponse, error_answer, relayed, retry_after_seconds
from orgate.upstreams.bedrock import RelayedResponse
from orgate.upstreams.betas import BetaPolicy, split

VERTEX_VERSION = "vertex-2023-10-16"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]

# Google canonical status -> (status for an Anthropic client, Anthropic error type). Api reference §D.11.
GOOGLE_STATUS: dict[str, tuple[int, str]] = {
    "INVALID_ARGUMENT": (400, "invalid_request_error"),
    "FAILED_PRECONDITION": (400, "invalid_request_error"),
    "OUT_OF_RANGE": (400, "invalid_request_error"),
    "UNAUTHENTICATED": (401, "authentication_error"),
    "PERMISSION_DENIED": (403, "permission_error"),
    "NOT_FOUND": (404, "not_found_error"),
    "ALREADY_EXISTS": (409, "conflict_error"),
    "ABORTED": (409, "conflict_error"),
    "RESOURCE_EXHAUSTED": (429, "rate_limit_error"),
    "CANCELLED": (499, "api_error"),
    "UNIMPLEMENTED": (404, "not_found_error"),
    "INTERNAL": (500, "api_error"),
    "UNKNOWN": (500, "api_error"),
    "DATA_LOSS": (500, "api_error"),
    "UNAVAILABLE": (529, "overloaded_error"),
    "DEADLINE_EXCEEDED": (504, "timeout_error"),
}
REFRESH_MARGIN = 300.0  # seconds before expiry at which a cached token is renewed


def base_url_for(region: str) -> str:
    if region == "global":
        return "https://aiplatform.googleapis.com/v1"
    if region in ("us", "eu"):  # multi-region endpoints
        return f"https://aiplatform.{region}.rep.googleapis.com/v1"
    return f"https://{region}-aiplatform.googleapis.com/v1"


class TokenSource:
    """An OAuth2 access token for Vertex: google-auth credentials, cached, refreshed single-flight."""

    def __init__(self, credentials_file: str | None, token_url: str | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.credentials_file = credentials_file
        self.token_url = token_url
        self.clock = clock
        self.project_id: str | None = None
        self._creds: Any = None
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.refreshes = 0

    def _load(self) -> Any:
        import google.auth

        if self.credentials_file:
            with open(self.credentials_file) as f:
                info = json.load(f)
            if self.token_url and info.get("type") in ("service_account", "authorized_user"):
                info["token_uri"] = self.token_url
            creds, project = google.auth.load_credentials_from_dict(info, scopes=SCOPES)
            project = project or info.get("project_id") or info.get("quota_project_id")
        else:
            creds, project = google.auth.default(scopes=SCOPES)
            if self.token_url and hasattr(creds, "with_token_uri"):
                creds = creds.with_token_uri(self.token_url)
        self.project_id = project
        return creds

    def _refresh(self) -> tuple[str, float]:
        import google.auth.exceptions
        import google.auth.transport.urllib3
        import urllib3

        if self._creds is None:
            self._creds = self._load()
        request = google.auth.transport.urllib3.Request(urllib3.PoolManager(timeout=urllib3.Timeout(connect=10, read=30)))
        try:
            self._creds.refresh(request)
        except google.auth.exceptions.TransportError as e:
            raise UpstreamUnavailable(f"Google token endpoint unreachable: {e}") from None
        except google.auth.exceptions.RefreshError as e:
            raise UpstreamError(f"Google credentials were refused: {e}", status=401, retryable=False) from None
        expiry = self._creds.expiry  # naive UTC
        lifetime = 3600.0
        if expiry is not None:
            lifetime = (expiry.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds()
        return self._creds.token, lifetime

    async def project(self) -> str | None:
        if self._creds is None:
            async with self._lock:
                if self._creds is None:
                    self._creds = await asyncio.to_thread(self._load)
        return self.project_id

    def _fresh(self) -> bool:
        return self._token is not None and self.clock() < self._expires_at - REFRESH_MARGIN

    async def token(self) -> str:
        if self._fresh():
            return self._token  # type: ignore[return-value]
        async with self._lock:  # single flight: waiters find the token the first refresher minted
            if not self._fresh():
                start = self.clock()
                token, lifetime = await asyncio.to_thread(self._refresh)
                self._token, self._expires_at = token, start + lifetime
                self.refreshes += 1
        return self._token  # type: ignore[return-value]


async def mapped_error(resp: http.HttpResponse, provider: str | None = None) -> UpstreamError:
    """A Vertex error answer as the typed error: Anthropic's own error as it came (503 read as 529), a
    Google error through GOOGLE_STATUS with Google's message."""
    raw = await resp.read()
    headers = relayed(resp.headers)
    try:
        obj: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):  # some Google front ends wrap errors in a list
        obj = obj[0]
    if isinstance(obj, dict) and obj.get("type") == "error" and isinstance(obj.get("error"), dict):
        status = 529 if resp.status == 503 else resp.status
        return error_answer(status, orjson.dumps(obj), headers, provider)  # Anthropic's own error, relayed
    message, gstatus, detail = "", None, None
    if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
        detail = obj["error"]
        message = str(detail.get("message") or "")
        gstatus = detail.get("status")
    if not message:
        message = raw.decode("utf-8", "replace")[:500] or f"Vertex AI returned HTTP {resp.status}"
    if isinstance(gstatus, str) and gstatus in GOOGLE_STATUS:
        status, kind = GOOGLE_STATUS[gstatus]
    else:
        status, kind = cloud_status(resp.status)
    return UpstreamError(message, status=status, kind=kind, headers=headers, retry_after=retry_after_seconds(headers),
                         provider=provider, detail=detail, answered=True)


class VertexUpstream:
    def __init__(self, name: str, provider: Provider, routing: RoutingSettings) -> None:
        self.name = name
        self.region = provider.region or os.environ.get("CLOUD_ML_REGION") or "global"
        self.base_url = (provider.base_url or base_url_for(self.region)).rstrip("/")
        self._project = provider.project_id or os.environ.get("ANTHROPIC_VERTEX_PROJECT_ID")
        self.tokens = TokenSource(provider.credentials_file, provider.token_url)
        self.betas = BetaPolicy.for_provider("vertex", provider.betas_add, provider.betas_remove)
        t = provider.timeouts
        self.connect_timeout = t.get("connect", routing.connect_timeout)
        self.first_byte_timeout = t.get("first_byte", routing.first_byte_timeout)
        self.idle_timeout = t.get("idle", routing.idle_timeout)

    async def _model_url(self, model: str) -> str:
        project = self._project or await self.tokens.project()
        if not project:
            raise UpstreamError("Vertex AI needs a project_id (config or credentials)", status=500, retryable=False)
        return f"{self.base_url}/projects/{project}/locations/{self.region}/publishers/anthropic/models/{model}"

    async def _headers(self, call: UpstreamCall, betas: list[str]) -> dict[str, str]:
        h = {
            "content-type": "application/json",
            "accept-encoding": "identity",
            "authorization": f"Bearer {await self.tokens.token()}",
        }
        if betas:
            h["anthropic-beta"] = ",".join(betas)
        for k, v in call.extra_headers.items():
            if k.lower() not in ("authorization", "x-api-key", "host"):
                h.setdefault(k.lower(), v)
        return h

    async def _send(self, url: str, body: dict[str, Any], call: UpstreamCall, read: float,
                    idle: float | None = None, counting: bool = False) -> UpstreamResponse:
        betas, body = self.betas.bridge(split(call.anthropic_beta), body, counting)
        resp = await http.post(url, orjson.dumps(body), await self._headers(call, betas), connect=self.connect_timeout,
                               read=read, idle=idle)
        if resp.status >= 300:
            raise await mapped_error(resp, self.name)
        return RelayedResponse(resp, {**relayed(resp.headers), "content-type": resp.headers.get("content-type", "application/json")})

    async def messages(self, call: UpstreamCall) -> UpstreamResponse:
        body = {k: v for k, v in call.json().items() if k != "model"}
        body.setdefault("anthropic_version", VERTEX_VERSION)
        base = await self._model_url(call.target.upstream_model)
        if call.stream:
            body["stream"] = True
            return await self._send(f"{base}:streamRawPredict", body, call, self.first_byte_timeout, self.idle_timeout)
        body.pop("stream", None)
        return await self._send(f"{base}:rawPredict", body, call, self.first_byte_timeout)

    async def count_tokens(self, call: UpstreamCall) -> UpstreamResponse:
        body = {k: v for k, v in call.json().items() if k != "stream"}
        body["model"] = call.target.upstream_model  # stays in the body for this endpoint
        body.setdefault("anthropic_version", VERTEX_VERSION)
        url = await self._model_url("count-tokens")
        return await self._send(f"{url}:rawPredict", body, call, self.first_byte_timeout, counting=True)

    async def aclose(self) -> None:
        return None
