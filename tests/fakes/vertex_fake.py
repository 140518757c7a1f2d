"""A real HTTP server that behaves like Vertex AI's Anthropic publisher endpoints and Google's token endpoint.

- `POST /token`: the OAuth2 JWT-bearer grant (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`,
  `assertion=<RS256 JWT>`), verified with the registered service account's public key (cryptography, not
  google-auth): issuer, audience = Google's token URL, cloud-platform scope, lifetime ≤ 1 h. Mints an access
  token valid `token_lifetime` seconds.
- `POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{m}:rawPredict|:streamRawPredict`, and
  `.../models/count-tokens:rawPredict`: only a minted, unexpired bearer token gets in (401 UNAUTHENTICATED
  otherwise, as Google answers); the body is checked (`anthropic_version: vertex-2023-10-16`, no `model`
  except for count-tokens, `stream` only with streamRawPredict); answers are scripted (`fake.script`),
  requests recorded (`fake.requests`, `fake.token_requests`).
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from orgate.dialects.anthropic.sse import encode_event
from tests.fakes.bedrock_fake import (
    VERTEX_BETAS,
    Recorded,
    ScriptedServer,
    extra_input,
    fault,
    message_events,
    stream_fault,
    text_message,
    unsupported_betas,
    write_pieces,
)

GOOGLE_CODES = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404, "RESOURCE_EXHAUSTED": 429, "INTERNAL": 500, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}  # fmt: skip
ANTHROPIC_CODES = {"invalid_request_error": 400, "rate_limit_error": 429, "overloaded_error": 529, "api_error": 500}
_PATH = re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/publishers/anthropic/models/([^/:]+):(rawPredict|streamRawPredict)$")
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_AUD = "https://oauth2.googleapis.com/token"


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


def make_service_account(directory: Path, token_uri: str, project: str = "fake-project", email: str = "gateway@fake-project.iam.gserviceaccount.com") -> tuple[Path, rsa.RSAPublicKey]:
    """A service-account JSON signed by a fresh RSA key; returns its path and the public key to register."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": email,
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path = directory / f"sa-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(info))
    return path, key.public_key()


class VertexFake(ScriptedServer):
    def __init__(self, project: str = "fake-project", token_lifetime: int = 3600) -> None:
        super().__init__()
        self.project = project
        self.token_lifetime = token_lifetime
        self.accepted_betas = set(VERTEX_BETAS)
        self.accounts: dict[str, rsa.RSAPublicKey] = {}
        self.tokens: dict[str, float] = {}  # access token -> expiry (epoch seconds)
        self.token_requests: list[dict[str, Any]] = []  # verified JWT claims of each grant

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def api_base(self) -> str:
        return f"{self.url}/v1"

    def add_account(self, email: str, public_key: rsa.RSAPublicKey) -> None:
        self.accounts[email] = public_key

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/token", self.token)
        app.router.add_route("*", "/{tail:.*}", self.handle)

    # ------------------------------------------------------------ OAuth2 token endpoint

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()

        def refuse(description: str) -> web.Response:
            return web.json_response({"error": "invalid_grant", "error_description": description}, status=400)

        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}, status=400)
        try:
            head_b, claims_b, sig_b = str(form.get("assertion", "")).encode().split(b".")
            header, claims, signature = json.loads(_b64url(head_b)), json.loads(_b64url(claims_b)), _b64url(sig_b)
        except ValueError:
            return refuse("Invalid JWT: malformed assertion")
        if header.get("alg") != "RS256":
            return refuse("Invalid JWT: algorithm must be RS256")
        key = self.accounts.get(claims.get("iss", ""))
        if key is None:
            return refuse("Invalid JWT: unknown issuer")
        try:
            key.verify(signature, head_b + b"." + claims_b, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return refuse("Invalid JWT Signature.")
        now = time.time()
        # Google's token endpoint wants its canonical URL as audience, wherever the grant is posted
        # (google-auth always signs aud=https://oauth2.googleapis.com/token, even with another token_uri).
        if claims.get("aud") not in (GOOGLE_TOKEN_AUD, self.token_url):
            return refuse(f"Invalid JWT: audience must be {GOOGLE_TOKEN_AUD}")
        if SCOPE not in str(claims.get("scope", "")).split():
            return refuse("Invalid JWT: cloud-platform scope missing")
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if exp - iat > 3600 or exp < now or iat > now + 60:
            return refuse("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
        self.token_requests.append(claims)
        token = f"ya29.fake-{len(self.token_requests)}-{uuid.uuid4().hex[:8]}"
        self.tokens[token] = now + self.token_lifetime
        return web.json_response({"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"})

    # ------------------------------------------------------------ model endpoints

    @staticmethod
    def google_error(status_name: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
        code = GOOGLE_CODES.get(status_name, 500)
        return web.json_response({"error": {"code": code, "message": message, "status": status_name}}, status=code, headers=headers)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        rec = Recorded(request.method, request.raw_path, request.headers.copy(), body)
        self.requests.append(rec)
        m = _PATH.match(request.raw_path)
        if request.method != "POST" or not m:
            return self.google_error("NOT_FOUND", f"The requested URL {request.raw_path} was not found on this server.")
        project, _location, rec.model, rec.action = m.groups()
        auth = request.headers.get("Authorization", "")
        expiry = self.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if expiry is None or expiry < time.time():
            return self.google_error("UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token.")
        if project != self.project:
            return self.google_error("PERMISSION_DENIED", f"Permission denied on resource project {project}.")
        try:
            rec.json = json.loads(body)
        except ValueError:
            return self.google_error("INVALID_ARGUMENT", "Invalid JSON payload received.")
        problem = self.check_body(rec.model, rec.action, rec.json) or self.check_betas(rec)
        if problem:
            return web.json_response({"type": "error", "error": {"type": "invalid_request_error", "message": problem}}, status=400)
        reply = self.next_reply(rec.json)
        if await fault(request, reply):
            return web.Response(status=500)
        if reply.error:
            return self.google_error(reply.error, reply.error_message, reply.headers)
        if reply.anthropic_error:
            err = {"type": "error", "error": {"type": reply.anthropic_error, "message": reply.error_message}}
            return web.json_response(err, status=ANTHROPIC_CODES.get(reply.anthropic_error, 400), headers=reply.headers)
        if rec.model == "count-tokens":
            tokens = reply.input_tokens if reply.input_tokens is not None else len(json.dumps(rec.json["messages"])) // 4
            return web.json_response({"input_tokens": tokens})
        message = reply.message or text_message()
        if rec.action == "rawPredict":
            return web.json_response(message, headers=reply.headers)
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream; charset=utf-8", **reply.headers})
        await resp.prepare(request)
        events = reply.events if reply.events is not None else message_events(message)
        for n, ev in enumerate(events):
            if await stream_fault(request, reply, n):
                return resp
            await write_pieces(resp, encode_event(ev["type"], ev), reply.write_size)
        await resp.write_eof()
        return resp

    def check_betas(self, rec: Recorded) -> str | None:
        """Vertex refuses betas it does not run, and any beta at all on count-tokens (claude-code#11154)."""
        betas = [b.strip() for b in rec.headers.get("anthropic-beta", "").split(",") if b.strip()]
        bad = betas if rec.model == "count-tokens" else unsupported_betas(betas, self.accepted_betas)
        if bad:
            names = ", ".join(f"`{b}`" for b in bad)
            return (f"Unexpected value(s) {names} for the `anthropic-beta` header. Please consult our documentation "
                    "at docs.anthropic.com or try again without the header.")
        return extra_input(rec.json, betas)

    @staticmethod
    def check_body(model: str, action: str, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "body: expected an object"
        if body.get("anthropic_version") != "vertex-2023-10-16":
            return "anthropic_version: Field required"
        if model == "count-tokens":
            if action != "rawPredict" or not isinstance(body.get("model"), str):
                return "model: Field required"
            if "stream" in body:
                return "stream: Extra inputs are not permitted"
        else:
            if "model" in body:
                return "model: Extra inputs are not permitted"
            if (action == "streamRawPredict") != (body.get("stream") is True):
                return "stream: must be true exactly for streamRawPredict"
            if not isinstance(body.get("max_tokens"), int):
                return "max_tokens: Field required"
        if not isinstance(body.get("messages"), list):
            return "messages: Field required"
        return None
