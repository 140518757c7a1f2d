"""A real HTTP server that behaves like bedrock-runtime for Claude's InvokeModel APIs, and like the
Messages-API endpoint (`/anthropic/v1/messages`, bedrock-runtime or bedrock-mantle: `service=`).

It checks what AWS checks: SigV4 recomputed with botocore's own SigV4Auth from the bytes received (403
InvalidSignatureException otherwise; unknown key -> UnrecognizedClientException), or a Bedrock API key as
`Authorization: Bearer`; the body (no `model`/`stream`, `anthropic_version: bedrock-2023-05-31`,
`max_tokens`, `messages`); streams in binary AWS event-stream. Replies are scripted per test (`fake.script`),
requests recorded (`fake.requests`).

On `/anthropic/v1/messages` (and mantle's `/anthropic/v1/messages/count_tokens`) it takes the first-party
request instead (docs.aws.amazon.com/bedrock/latest/userguide/inference-messages-api.html): the signature for
the fake's own `service` (`bedrock` on runtime, `bedrock-mantle` on mantle), an `anthropic-version` header,
betas only in the `anthropic-beta` header (Bedrock's set), a body with a Bedrock `model` id, `max_tokens`,
`messages` and none of InvokeModel's keys; it answers Anthropic JSON or SSE (`text/event-stream`). Errors a
request gets at AWS's front door (auth, unknown operation) are AWS-shaped; the model's own are Anthropic-shaped.

The scripted-reply helpers here (Reply, text_message, tool_use_message, thinking_message, message_events)
are shared with the Vertex fake.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hmac
import json
import re
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from orgate.upstreams.eventstream import encode_message

# ---------------------------------------------------------------- scripted replies (shared with Vertex)


@dataclass
class Reply:
    message: dict[str, Any] | None = None  # JSON answer; for streams turned into events by message_events
    events: list[dict[str, Any]] | None = None  # explicit stream events
    status: int = 200
    error: str | None = None  # Bedrock: AWS exception name; Vertex: Google status (RESOURCE_EXHAUSTED, …)
    error_message: str = "scripted error"
    anthropic_error: str | None = None  # Vertex: answer an Anthropic-format error of this type instead
    stream_exception: str | None = None  # Bedrock: exception frame (camelCase name) after `cut_after` events
    cut_after: int = 3
    corrupt_frame: int | None = None  # Bedrock: flip one payload byte of this frame (CRC must catch it)
    write_size: int | None = None  # write the stream in pieces of this many bytes
    headers: dict[str, str] = field(default_factory=dict)
    input_tokens: int | None = None  # count tokens answer
    delay: float = 0.0  # seconds before answering at all (a slow first byte)
    drop: bool = False  # close the connection instead of answering
    drop_after_events: int | None = None  # stream: close the connection after this many events
    pause_after: int | None = None  # stream: after this many events, think silently for `pause` seconds
    pause: float = 0.0
    hang_after: int | None = None  # stream: after this many events, send nothing more and never close


async def stream_fault(request: web.Request, reply: Reply, n: int) -> bool:
    """Before writing event `n` of a stream: pause, hang or drop as scripted; True when nothing more goes out."""
    if reply.drop_after_events is not None and n >= reply.drop_after_events:
        request.transport.close()  # type: ignore[union-attr]
        return True
    if reply.pause_after is not None and n == reply.pause_after:
        await asyncio.sleep(reply.pause)
    if reply.hang_after is not None and n >= reply.hang_after:
        # A dead upstream: headers and some events, then silence until the other side gives up.
        for _ in range(1200):
            if request.transport is None or request.transport.is_closing():
                break
            await asyncio.sleep(0.1)
        return True
    return False


def _message(content: list[dict[str, Any]], stop: str = "end_turn", model: str = "claude-sonnet-4-5") -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 7},
    }


def text_message(text: str = "Hello from the fake.") -> dict[str, Any]:
    return _message([{"type": "text", "text": text}])


def tool_use_message(name: str = "get_weather", tool_input: dict[str, Any] | None = None) -> dict[str, Any]:
    block = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": name, "input": tool_input or {"location": "Paris"}}
    return _message([{"type": "text", "text": "Checking."}, block], stop="tool_use")


def thinking_message(thinking: str = "Let me think.", signature: str = "EqQBCkYIARgCKkD+sig/with+base64==", text: str = "Done.") -> dict[str, Any]:
    return _message([{"type": "thinking", "thinking": thinking, "signature": signature}, {"type": "text", "text": text}])


def message_events(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The Anthropic stream events (§A.10) that accumulate to `message`."""
    start = copy.deepcopy(message)
    start.update(content=[], stop_reason=None, stop_sequence=None)
    start["usage"] = {**message["usage"], "output_tokens": 1}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for i, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            events.append({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}})
            if i == 0:
                events.append({"type": "ping"})
            text = block["text"]
            for j in range(0, len(text), 5):
                events.append({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": text[j : j + 5]}})
        elif kind == "thinking":
            events.append({"type": "content_block_start", "index": i, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
            events.append({"type": "content_block_delta", "index": i, "delta": {"type": "thinking_delta", "thinking": block["thinking"]}})
            events.append({"type": "content_block_delta", "index": i, "delta": {"type": "signature_delta", "signature": block["signature"]}})
        elif kind == "tool_use":
            events.append({"type": "content_block_start", "index": i, "content_block": {**block, "input": {}}})
            raw = json.dumps(block["input"])
            events.append({"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": ""}})
            for j in range(0, len(raw), 7):
                events.append({"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": raw[j : j + 7]}})
        events.append({"type": "content_block_stop", "index": i})
    events.append({"type": "message_delta", "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None}, "usage": {"output_tokens": message["usage"]["output_tokens"]}})
    events.append({"type": "message_stop"})
    return events


# ---------------------------------------------------------------- betas as the clouds check them

# What each cloud takes, from its documentation (sources in orgate/upstreams/betas.py); written out here on
# its own so the fakes judge the gateway instead of echoing its table. Anything else is refused.
_CLOUD_COMMON = {
    "claude-code-20250219", "computer-use-2024-10-22", "computer-use-2025-01-24", "computer-use-2025-11-24",
    "interleaved-thinking-2025-05-14", "context-1m-2025-08-07", "context-management-2025-06-27",
    "compact-2026-01-12", "tool-search-tool-2025-10-19", "thinking-display-updates-2026-08-18",
}  # fmt: skip
BEDROCK_BETAS = _CLOUD_COMMON | {"token-efficient-tools-2025-02-19", "output-128k-2025-02-19",
                                 "dev-full-thinking-2025-05-14", "effort-2025-11-24", "tool-examples-2025-10-29"}
VERTEX_BETAS = _CLOUD_COMMON | {"web-search-2025-03-05"}
# Beta-only body fields (api-reference §A.3) and the betas that admit them.
BETA_FIELDS = {
    "context_management": {"context-management-2025-06-27", "compact-2026-01-12"},
    "mcp_servers": {"mcp-client-2025-04-04", "mcp-client-2025-11-20"},
    "speed": {"fast-mode-2026-02-01"},
    "output_format": {"structured-outputs-2025-11-13", "structured-outputs-2025-12-15"},
    "tools.defer_loading": {"tool-search-tool-2025-10-19", "advanced-tool-use-2025-11-20"},
}


def unsupported_betas(betas: list[str], accepted: set[str]) -> list[str]:
    return [b for b in betas if b not in accepted]


def extra_input(body: dict[str, Any], betas: list[str]) -> str | None:
    """The upstream's message for a beta-gated field sent without its beta, as Anthropic's validator words it."""
    for name, needs in BETA_FIELDS.items():
        if needs.intersection(betas):
            continue
        if name.startswith("tools."):
            key = name[len("tools."):]
            for i, tool in enumerate(body.get("tools") or []):
                if isinstance(tool, dict) and key in tool:
                    return f"tools.{i}.custom.{key}: Extra inputs are not permitted"
        elif name in body:
            return f"{name}: Extra inputs are not permitted"
    return None


@dataclass
class Recorded:
    method: str
    raw_path: str
    headers: Any  # case-insensitive (CIMultiDict)
    body: bytes
    json: Any = None
    model: str | None = None
    action: str | None = None


class ScriptedServer:
    """aiohttp server on 127.0.0.1:<ephemeral>; subclasses add routes."""

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        # The answer when nothing is scripted: a Reply, or a function of the request body (an agent turn).
        self.default: Reply | Callable[[Any], Reply] | None = None
        self.requests: list[Recorded] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    def next_reply(self, body: Any = None) -> Reply:
        if self.script:
            return self.script.popleft()
        if callable(self.default):
            return self.default(body)
        return self.default or Reply(message=text_message())

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> ScriptedServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def fault(request: web.Request, reply: Reply) -> bool:
    """Apply a scripted transport fault; True when the connection was dropped (nothing more to send)."""
    if reply.delay:
        await asyncio.sleep(reply.delay)
    if reply.drop:
        request.transport.close()  # type: ignore[union-attr]
        return True
    return False


async def write_pieces(resp: web.StreamResponse, data: bytes, size: int | None) -> None:
    if size is None:
        await resp.write(data)
        return
    for i in range(0, len(data), size):
        await resp.write(data[i : i + size])
        await asyncio.sleep(0)


# ---------------------------------------------------------------- Bedrock

AWS_STATUS = {
    "ValidationException": 400, "AccessDeniedException": 403, "ResourceNotFoundException": 404,
    "ThrottlingException": 429, "ServiceQuotaExceededException": 400, "ModelNotReadyException": 429,
    "ServiceUnavailableException": 503, "ModelTimeoutException": 408, "ModelErrorException": 424,
    "InternalServerException": 500,
}  # fmt: skip
_AUTH = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$")
_PATH = re.compile(r"^/model/([^/]+)/(invoke|invoke-with-response-stream|count-tokens)$")
MESSAGES_PATHS = {"/anthropic/v1/messages": "messages", "/anthropic/v1/messages/count_tokens": "count_tokens"}
_BEDROCK_ID = re.compile(r"^(?:(?:us|eu|apac|jp|au|ca|us-gov|global)\.)?anthropic\.claude-[a-z0-9.:-]+$|^arn:aws[a-z-]*:bedrock:")
# Bedrock's request-metadata value pattern (its Converse constraint); a third-party run reports the /anthropic
# route refusing Claude Code's JSON-string `metadata.user_id` with this error (not in AWS's Messages page).
_METADATA_VALUE = re.compile(r"[a-zA-Z0-9\s:_@$#=/+,.-]{0,256}")
# An AWS exception name's Anthropic error type, for the Anthropic-shaped answers of the Messages API.
ANTHROPIC_KIND = {"ValidationException": "invalid_request_error", "AccessDeniedException": "permission_error",
                  "ResourceNotFoundException": "not_found_error", "ThrottlingException": "rate_limit_error",
                  "ServiceUnavailableException": "overloaded_error", "throttlingException": "rate_limit_error",
                  "modelStreamErrorException": "api_error", "internalServerException": "api_error"}


class BedrockFake(ScriptedServer):
    def __init__(self, region: str = "us-east-1", keys: dict[str, tuple[str, str | None]] | None = None, bearer_tokens: set[str] | None = None,
                 service: str = "bedrock") -> None:
        super().__init__()
        self.region = region
        self.service = service  # "bedrock-mantle": a bedrock-mantle host, which serves only the Messages API
        self.accepted_betas = set(BEDROCK_BETAS)
        self.keys = keys if keys is not None else {"AKIDFAKEEXAMPLE": ("fake/secret/key", None)}  # akid -> (secret, session token)
        self.bearer_tokens = bearer_tokens or set()

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self.handle)

    def _aws_error(self, name: str, message: str, status: int | None = None, extra: dict[str, str] | None = None) -> web.Response:
        headers = {"x-amzn-ErrorType": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/", "x-amzn-RequestId": str(uuid.uuid4())}
        headers.update(extra or {})
        return web.json_response({"message": message}, status=status or AWS_STATUS.get(name, 400), headers=headers)

    def check_auth(self, request: web.Request, body: bytes) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            if auth[7:] in self.bearer_tokens:
                return None
            return self._aws_error("UnrecognizedClientException", "The security token included in the request is invalid.", 403)
        m = _AUTH.match(auth)
        if not m:
            return self._aws_error("MissingAuthenticationTokenException", "Missing Authentication Token", 403)
        akid, date, region, service, signed, signature = m.groups()
        if akid not in self.keys:
            return self._aws_error("UnrecognizedClientException", "The security token included in the request is invalid.", 403)
        secret, token = self.keys[akid]
        amz_date = request.headers.get("X-Amz-Date", "")
        names = signed.split(";")
        if region != self.region or service != self.service or not amz_date.startswith(date) or not {"host", "x-amz-date"} <= set(names):
            return self._aws_error("InvalidSignatureException", f"Credential should be scoped to a valid region and service; got {region}/{service}.", 403)
        when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if abs((datetime.now(UTC) - when).total_seconds()) > 300:
            return self._aws_error("InvalidSignatureException", "Signature expired.", 403)
        if token is not None and (request.headers.get("X-Amz-Security-Token") != token or "x-amz-security-token" not in names):
            return self._aws_error("UnrecognizedClientException", "The security token included in the request is invalid.", 403)
        if any(n not in request.headers for n in names):
            return self._aws_error("InvalidSignatureException", "A signed header is missing from the request.", 403)
        aws_request = AWSRequest(method=request.method, url=f"https://{request.headers['Host']}{request.raw_path}", data=body, headers={n: request.headers[n] for n in names})
        aws_request.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(akid, secret, token), self.service, self.region)
        expected = signer.signature(signer.string_to_sign(aws_request, signer.canonical_request(aws_request)), aws_request)
        if not hmac.compare_digest(expected, signature):
            return self._aws_error("InvalidSignatureException", "The request signature we calculated does not match the signature you provided.", 403)
        return None

    def check_invoke_body(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "Malformed input request: expected a JSON object"
        for key in ("model", "stream"):
            if key in body:
                return f"Malformed input request: #: extraneous key [{key}] is not permitted"
        if body.get("anthropic_version") != "bedrock-2023-05-31":
            return "Malformed input request: #: required key [anthropic_version] not found or invalid"
        if not isinstance(body.get("max_tokens"), int) or not isinstance(body.get("messages"), list):
            return "Malformed input request: #: required key [max_tokens] / [messages] not found"
        beta = body.get("anthropic_beta")
        if beta is not None and not (isinstance(beta, list) and all(isinstance(b, str) for b in beta)):
            return "Malformed input request: #/anthropic_beta: expected type: JSONArray"
        if unsupported_betas(beta or [], self.accepted_betas):
            return "invalid beta flag"
        return extra_input(body, beta or [])

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        rec = Recorded(request.method, request.raw_path, request.headers.copy(), body)
        self.requests.append(rec)
        if request.raw_path in MESSAGES_PATHS and request.method == "POST":
            return await self.messages_api(request, rec, MESSAGES_PATHS[request.raw_path])
        m = _PATH.match(request.raw_path)
        if request.method != "POST" or not m or self.service == "bedrock-mantle":
            return self._aws_error("UnknownOperationException", "Unknown operation", 404)
        rec.model, rec.action = unquote(m.group(1)), m.group(2)
        denied = self.check_auth(request, body)
        if denied is not None:
            return denied
        try:
            rec.json = json.loads(body)
        except ValueError:
            return self._aws_error("ValidationException", "Malformed input request, please reformat your input and try again.")
        reply = self.next_reply(rec.json)
        if await fault(request, reply):
            return web.Response(status=500)
        if rec.action == "count-tokens":
            return await self.count_tokens(rec, reply)
        problem = self.check_invoke_body(rec.json)
        if problem:
            return self._aws_error("ValidationException", problem)
        if reply.error:
            return self._aws_error(reply.error, reply.error_message, extra=reply.headers)
        rid = {"x-amzn-RequestId": str(uuid.uuid4()), **reply.headers}
        message = reply.message or text_message()
        if rec.action == "invoke":
            return web.json_response(message, headers={**rid, "X-Amzn-Bedrock-Input-Token-Count": str(message["usage"]["input_tokens"])})
        return await self.stream(request, reply, message, rid)

    async def count_tokens(self, rec: Recorded, reply: Reply) -> web.Response:
        try:
            invoke = json.loads(base64.b64decode(rec.json["input"]["invokeModel"]["body"], validate=True))
        except (KeyError, TypeError, ValueError):
            return self._aws_error("ValidationException", "Malformed input: input.invokeModel.body must be base64 of the InvokeModel body")
        if re.match(r"^(us|eu|apac|jp|au|us-gov|global)\.", rec.model or ""):
            return self._aws_error("ValidationException", "The provided model doesn't support counting tokens.")
        problem = self.check_invoke_body(invoke)
        if problem:
            return self._aws_error("ValidationException", problem)
        if reply.error:
            return self._aws_error(reply.error, reply.error_message, extra=reply.headers)
        tokens = reply.input_tokens if reply.input_tokens is not None else len(json.dumps(invoke["messages"])) // 4
        return web.json_response({"inputTokens": tokens}, headers={"x-amzn-RequestId": str(uuid.uuid4())})

    async def stream(self, request: web.Request, reply: Reply, message: dict[str, Any], rid: dict[str, str]) -> web.StreamResponse:
        events = reply.events if reply.events is not None else message_events(message)
        if reply.stream_exception:
            events = events[: reply.cut_after]
        frames = []
        for ev in events:
            if ev.get("type") == "message_stop":
                ev = {**ev, "amazon-bedrock-invocationMetrics": {"inputTokenCount": 12, "outputTokenCount": 7, "invocationLatency": 410, "firstByteLatency": 120}}
            payload = json.dumps({"bytes": base64.b64encode(json.dumps(ev).encode()).decode(), "p": "abcdefghij"[: len(frames) % 10]}).encode()
            frames.append(encode_message({":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}, payload))
        if reply.stream_exception:
            payload = json.dumps({"message": reply.error_message}).encode()
            frames.append(encode_message({":exception-type": reply.stream_exception, ":content-type": "application/json", ":message-type": "exception"}, payload))
        if reply.corrupt_frame is not None:
            f = bytearray(frames[reply.corrupt_frame])
            f[-6] ^= 0x01
            frames[reply.corrupt_frame] = bytes(f)
        resp = web.StreamResponse(status=200, headers={**rid, "Content-Type": "application/vnd.amazon.eventstream", "X-Amzn-Bedrock-Content-Type": "application/json"})
        await resp.prepare(request)
        for n, frame in enumerate(frames):
            if await stream_fault(request, reply, n):
                return resp
            await write_pieces(resp, frame, reply.write_size)
        await resp.write_eof()
        return resp

    # ------------------------------------------------------------ the Messages API (/anthropic/v1/messages)

    def _anthropic_error(self, status: int, kind: str, message: str, extra: dict[str, str] | None = None) -> web.Response:
        headers = {"x-amzn-RequestId": str(uuid.uuid4()), **(extra or {})}
        return web.json_response({"type": "error", "error": {"type": kind, "message": message}}, status=status, headers=headers)

    def check_messages_request(self, request: web.Request, body: Any, counting: bool) -> str | None:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", request.headers.get("anthropic-version", "")):
            return "anthropic-version: header is required"
        if not isinstance(body, dict):
            return "Request body must be a JSON object"
        for key in ("anthropic_version", "anthropic_beta"):  # InvokeModel's keys are not this API's
            if key in body:
                return f"{key}: Extra inputs are not permitted"
        model = body.get("model")
        if not isinstance(model, str) or not _BEDROCK_ID.match(model):
            return f"model: {model!r} is not a Bedrock model identifier"
        if not isinstance(body.get("messages"), list) or (not counting and not isinstance(body.get("max_tokens"), int)):
            return "max_tokens / messages: Field required"
        meta = body.get("metadata")
        uid = meta.get("user_id") if isinstance(meta, dict) else None
        if isinstance(uid, str) and not _METADATA_VALUE.fullmatch(uid):
            return "Request metadata contains a value that violates the regular expression"
        betas = [b.strip() for b in request.headers.get("anthropic-beta", "").split(",") if b.strip()]
        if unsupported_betas(betas, self.accepted_betas):
            return f"Unexpected value(s) `{','.join(unsupported_betas(betas, self.accepted_betas))}` for the `anthropic-beta` header"
        return extra_input(body, betas)

    async def messages_api(self, request: web.Request, rec: Recorded, action: str) -> web.StreamResponse:
        rec.action = action
        body = rec.body
        denied = self.check_auth(request, body)
        if denied is not None:
            return denied
        if action == "count_tokens" and self.service != "bedrock-mantle":
            # bedrock-runtime documents no count_tokens on this route (AWS: count on bedrock-mantle)
            return self._aws_error("UnknownOperationException", "Unknown operation", 404)
        try:
            rec.json = json.loads(body)
        except ValueError:
            return self._anthropic_error(400, "invalid_request_error", "Request body is not valid JSON")
        rec.model = rec.json.get("model") if isinstance(rec.json, dict) else None
        reply = self.next_reply(rec.json)
        if await fault(request, reply):
            return web.Response(status=500)
        problem = self.check_messages_request(request, rec.json, action == "count_tokens")
        if problem:
            return self._anthropic_error(400, "invalid_request_error", problem)
        if reply.error:  # an AWS-side refusal (throttling, access): AWS's shape
            return self._aws_error(reply.error, reply.error_message, extra=reply.headers)
        if reply.anthropic_error:
            status = {"rate_limit_error": 429, "overloaded_error": 529, "invalid_request_error": 400}.get(reply.anthropic_error, 500)
            return self._anthropic_error(status, reply.anthropic_error, reply.error_message, reply.headers)
        rid = {"x-amzn-RequestId": str(uuid.uuid4()), **reply.headers}
        if action == "count_tokens":
            tokens = reply.input_tokens if reply.input_tokens is not None else len(json.dumps(rec.json["messages"])) // 4
            return web.json_response({"input_tokens": tokens}, headers=rid)
        message = {**(reply.message or text_message()), "model": rec.model}
        if not rec.json.get("stream"):
            return web.json_response(message, headers=rid)
        events = reply.events if reply.events is not None else message_events(message)
        if reply.stream_exception:
            kind = ANTHROPIC_KIND.get(reply.stream_exception, "api_error")
            events = events[: reply.cut_after] + [{"type": "error", "error": {"type": kind, "message": reply.error_message}}]
        resp = web.StreamResponse(status=200, headers={**rid, "Content-Type": "text/event-stream; charset=utf-8"})
        await resp.prepare(request)
        for n, ev in enumerate(events):
            if await stream_fault(request, reply, n):
                return resp
            await write_pieces(resp, f"event: {ev['type']}\ndata: {json.dumps(ev)}\n\n".encode(), reply.write_size)
        await resp.write_eof()
        return resp
