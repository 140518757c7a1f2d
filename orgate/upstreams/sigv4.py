"""AWS Signature Version 4 for Bedrock, and where the credentials come from.

Hand-rolled rather than botocore's signer: the recipe is ~40 lines of hashlib/hmac, signing runs on every
request (no reason to build botocore's AWSRequest objects on the hot path), and botocore is a 100 MB
dependency the gateway otherwise does not need. tests/upstreams checks this signer against botocore's
SigV4Auth on many requests, and the Bedrock fake verifies signatures with botocore.

Canonical URI: the path as it goes on the wire (already percent-encoded: `/model/anthropic.x-v1%3A0/invoke`)
is URI-encoded once more, as botocore does for every service but S3 (`%3A` -> `%253A`). The AWS servers
compute it the same way from the path they receive, so the caller must send exactly the path it signed
(aiohttp: `yarl.URL(url, encoded=True)`).

Credentials, first match wins: the provider's `bearer_token` (Bedrock API key -> `Authorization: Bearer`),
the provider's access key pair (+ session token), env `AWS_BEARER_TOKEN_BEDROCK`, env
`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, and finally botocore's default chain
(profiles, SSO, container/instance roles), which needs botocore: the optional extra `orgate[aws]`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from orgate.errors import UpstreamError

AWS_EXTRA_HINT = "the AWS default credential chain needs botocore: pip install 'orgate[aws]'"

ALGORITHM = "AWS4-HMAC-SHA256"
# Headers a hop may rewrite or drop; botocore leaves the same ones out.
UNSIGNED_HEADERS = frozenset(
    {
        "authorization", "baggage", "connection", "expect", "keep-alive", "proxy-authenticate",
        "proxy-authorization", "te", "traceparent", "tracestate", "trailer", "transfer-encoding",
        "upgrade", "user-agent", "x-amzn-trace-id", "content-length",
    }
)  # fmt: skip
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    access_key: str
    secret_key: str
    token: str | None = None


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = _hmac(f"AWS4{secret}".encode(), date)
    return _hmac(_hmac(_hmac(k, region), service), "aws4_request")


def canonical_host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def canonical_request(method: str, url: str, headers: Mapping[str, str], payload_hash: str) -> tuple[str, str]:
    """(canonical request, signed header list) for headers already lower-cased and filtered."""
    parts = urlsplit(url)
    path = quote(parts.path or "/", safe="/~")
    query = ""
    if parts.query:
        pairs = sorted(tuple(p.partition("=")[::2]) for p in parts.query.split("&"))
        query = "&".join(f"{k}={v}" for k, v in pairs)
    names = sorted(headers)
    canon_headers = "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names)
    signed = ";".join(names)
    return f"{method.upper()}\n{path}\n{query}\n{canon_headers}\n{signed}\n{payload_hash}", signed


def sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: AwsCredentials,
    region: str,
    service: str = "bedrock",
    now: datetime | None = None,
) -> dict[str, str]:
    """The request's headers plus `host`, `x-amz-date`, `x-amz-security-token` and `authorization`.

    `url` must carry the path exactly as it will be sent; `body` is the exact bytes that will be sent.
    """
    now = now or datetime.now(UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    out = {k.lower(): v for k, v in headers.items() if k.lower() not in ("authorization", "x-amz-date", "x-amz-security-token")}
    out.setdefault("host", canonical_host(url))
    out["x-amz-date"] = amz_date
    if credentials.token:
        out["x-amz-security-token"] = credentials.token
    to_sign = {k: v for k, v in out.items() if k not in UNSIGNED_HEADERS}
    payload_hash = out.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    creq, signed = canonical_request(method, url, to_sign, payload_hash)
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(creq.encode('utf-8')).hexdigest()}"
    signature = hmac.new(signing_key(credentials.secret_key, date, region, service), string_to_sign.encode(), hashlib.sha256).hexdigest()
    out["authorization"] = f"{ALGORITHM} Credential={credentials.access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
    return out


class AwsAuth:
    """Adds Bedrock authentication to a request: a bearer API key or a SigV4 signature."""

    def __init__(self, provider: Any, region: str, service: str = "bedrock", env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.region = region
        self.service = service
        self.bearer: str | None = None
        self.static: AwsCredentials | None = None
        self._chain: Any = None
        self._lock = asyncio.Lock()
        if provider.bearer_token:
            self.bearer = provider.bearer_token
        elif provider.aws_access_key_id and provider.aws_secret_access_key:
            self.static = AwsCredentials(provider.aws_access_key_id, provider.aws_secret_access_key, provider.aws_session_token or None)
        elif env.get("AWS_BEARER_TOKEN_BEDROCK"):
            self.bearer = env["AWS_BEARER_TOKEN_BEDROCK"]
        elif env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            self.static = AwsCredentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN") or None)

    @property
    def needs_chain(self) -> bool:
        """True when only botocore's default chain can supply credentials."""
        return self.bearer is None and self.static is None

    async def credentials(self) -> AwsCredentials:
        if self.static is not None:
            return self.static
        # botocore's chain may do I/O (instance metadata, SSO, STS): keep it off the event loop.
        async with self._lock:
            frozen = await asyncio.to_thread(self._chain_credentials)
        return frozen

    def _chain_credentials(self) -> AwsCredentials:
        if self._chain is None:
            try:
                import botocore.session  # optional: only for profiles / instance roles
            except ImportError:
                raise UpstreamError(
                    f"no AWS credentials configured (set bearer_token or aws_access_key_id/aws_secret_access_key; {AWS_EXTRA_HINT})",
                    status=500,
                    retryable=False,
                ) from None
            self._chain = botocore.session.get_session().get_credentials()
            if self._chain is None:
                raise UpstreamError("no AWS credentials found in config, environment or the AWS default chain", status=500, retryable=False)
        c = self._chain.get_frozen_credentials()  # refreshes temporary credentials when due
        return AwsCredentials(c.access_key, c.secret_key, c.token or None)

    async def headers(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        if self.bearer is not None:
            out = {k.lower(): v for k, v in headers.items()}
            out["authorization"] = f"Bearer {self.bearer}"
            return out
        return sign(method, url, headers, body, await self.credentials(), self.region, self.service)
