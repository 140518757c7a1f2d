"""VertexUpstream against the Vertex fake: OAuth2 JWT-bearer grant with a test service account, real HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from orgate.config import Provider, RoutingSettings
from orgate.core.sse import SSEFramer
from orgate.core.target import Target
from orgate.errors import UpstreamError
from orgate.upstreams import http
from orgate.upstreams.base import UpstreamCall
from orgate.upstreams.vertex import VertexUpstream, base_url_for
from tests.fakes.bedrock_fake import Reply, text_message, thinking_message
from tests.fakes.vertex_fake import VertexFake, make_service_account
from tests.upstreams import answered

MODEL = "claude-sonnet-4-5@20250929"
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 128, "messages": [{"role": "user", "content": "Hi"}]}


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[VertexFake]:
    f = VertexFake(project="fake-project")
    await f.start()
    yield f
    await f.stop()
    await http.close_session()


@pytest.fixture
def sa_file(fake: VertexFake, tmp_path: Path) -> Path:
    path, public = make_service_account(tmp_path, fake.token_url)
    fake.add_account(json.loads(path.read_text())["client_email"], public)
    return path


def upstream(fake: VertexFake, credentials_file: Path | None, region: str = "us-east5", **kw: Any) -> Any:
    p = Provider(type="vertex", region=region, base_url=fake.api_base, credentials_file=str(credentials_file) if credentials_file else None, **kw)
    return answered(VertexUpstream("vertex", p, RoutingSettings()))


def call(stream: bool, body: dict | None = None, beta: str | None = None, model: str = MODEL) -> UpstreamCall:
    return UpstreamCall(Target("vertex", "vertex", model), dict(body or BODY), stream, anthropic_beta=beta)


async def collect(resp: Any) -> list[tuple[str, dict]]:
    decoder = SSEFramer()
    frames = []
    async for chunk in resp.iter_chunks():
        frames += decoder.feed(chunk)
    frames += decoder.finish()
    return [(name, json.loads(data)) for name, data in frames]


@pytest.mark.asyncio
async def test_raw_predict(fake: VertexFake, sa_file: Path) -> None:
    fake.script.append(Reply(message=text_message("Salut")))
    resp = await upstream(fake, sa_file).messages(call(False, beta="context-1m-2025-08-07"))
    assert resp.status == 200
    assert json.loads(await resp.read())["content"] == [{"type": "text", "text": "Salut"}]
    (rec,) = fake.requests
    assert rec.raw_path == f"/v1/projects/fake-project/locations/us-east5/publishers/anthropic/models/{MODEL}:rawPredict"
    assert "model" not in rec.json and "stream" not in rec.json
    assert rec.json["anthropic_version"] == "vertex-2023-10-16" and rec.json["messages"] == BODY["messages"]
    assert rec.headers["anthropic-beta"] == "context-1m-2025-08-07"
    assert rec.headers["Authorization"].startswith("Bearer ya29.fake-1-")
    (claims,) = fake.token_requests
    assert claims["iss"].endswith("iam.gserviceaccount.com") and claims["aud"] == "https://oauth2.googleapis.com/token"


@pytest.mark.asyncio
async def test_stream_thinking_signature_unchanged(fake: VertexFake, sa_file: Path) -> None:
    sig = "Ep8BCkgIBxABGAIqQP/+sig==" * 20
    fake.script.append(Reply(message=thinking_message("Hmm.", sig, "Yes."), write_size=11))
    resp = await upstream(fake, sa_file).messages(call(True))
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/event-stream")
    events = await collect(resp)
    assert [n for n, _ in events] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip
    assert events[3][1]["delta"] == {"type": "signature_delta", "signature": sig}
    rec = fake.requests[0]
    assert rec.raw_path.endswith(f"/models/{MODEL}:streamRawPredict") and rec.json["stream"] is True


@pytest.mark.asyncio
async def test_token_cached_and_refreshed(fake: VertexFake, sa_file: Path) -> None:
    up = upstream(fake, sa_file)
    now = [1000.0]
    up.tokens.clock = lambda: now[0]
    for _ in range(3):
        assert (await up.messages(call(False))).status == 200
    assert len(fake.token_requests) == 1
    now[0] += 3000  # more than an hour minus the five-minute margin: still fresh
    assert (await up.messages(call(False))).status == 200
    assert len(fake.token_requests) == 1
    now[0] += 400  # within five minutes of expiry: refreshed before use
    assert (await up.messages(call(False))).status == 200
    assert len(fake.token_requests) == 2
    tokens = [r.headers["Authorization"] for r in fake.requests]
    assert len(set(tokens[:4])) == 1 and tokens[4] != tokens[0]


@pytest.mark.asyncio
async def test_concurrent_requests_refresh_once(fake: VertexFake, sa_file: Path) -> None:
    up = upstream(fake, sa_file)
    results = await asyncio.gather(*(up.messages(call(False)) for _ in range(20)))
    assert all(r.status == 200 for r in results)
    assert len(fake.token_requests) == 1 and up.tokens.refreshes == 1


@pytest.mark.asyncio
async def test_unregistered_key_refused(fake: VertexFake, tmp_path: Path) -> None:
    path, _ = make_service_account(tmp_path, fake.token_url)  # never registered with the fake
    with pytest.raises(UpstreamError) as info:
        await upstream(fake, path).messages(call(False))
    assert info.value.status == 401 and info.value.kind == "authentication_error"
    assert fake.requests == []


@pytest.mark.asyncio
async def test_rejected_bearer_maps_to_401(fake: VertexFake, sa_file: Path) -> None:
    up = upstream(fake, sa_file)
    assert (await up.messages(call(False))).status == 200
    fake.tokens.clear()  # token revoked upstream
    resp = await up.messages(call(False))
    assert resp.status == 401
    assert json.loads(await resp.read())["error"]["type"] == "authentication_error"


@pytest.mark.asyncio
async def test_token_url_override(fake: VertexFake, tmp_path: Path) -> None:
    path, public = make_service_account(tmp_path, "https://oauth2.googleapis.com/token")
    fake.add_account(json.loads(path.read_text())["client_email"], public)
    up = upstream(fake, path, token_url=fake.token_url)
    assert (await up.messages(call(False))).status == 200
    assert len(fake.token_requests) == 1  # the grant went to the fake, not to Google


@pytest.mark.asyncio
async def test_application_default_credentials(fake: VertexFake, sa_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(sa_file))
    up = upstream(fake, None)  # project comes from the credentials
    assert (await up.messages(call(False))).status == 200
    assert "/projects/fake-project/" in fake.requests[0].raw_path


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("google_status", "status", "kind"),
    [("RESOURCE_EXHAUSTED", 429, "rate_limit_error"), ("UNAVAILABLE", 529, "overloaded_error"), ("DEADLINE_EXCEEDED", 504, "timeout_error"),
     ("PERMISSION_DENIED", 403, "permission_error"), ("INVALID_ARGUMENT", 400, "invalid_request_error"), ("NOT_FOUND", 404, "not_found_error"),
     ("INTERNAL", 500, "api_error")],
)  # fmt: skip
async def test_google_errors_mapped(fake: VertexFake, sa_file: Path, google_status: str, status: int, kind: str) -> None:
    fake.script.append(Reply(error=google_status, error_message="Quota exceeded for aiplatform.googleapis.com", headers={"Retry-After": "2"}))
    resp = await upstream(fake, sa_file).messages(call(True))
    assert resp.status == status
    assert json.loads(await resp.read()) == {"type": "error", "error": {"type": kind, "message": "Quota exceeded for aiplatform.googleapis.com"}}
    assert resp.headers["retry-after"] == "2"


@pytest.mark.asyncio
async def test_anthropic_errors_relayed(fake: VertexFake, sa_file: Path) -> None:
    fake.script.append(Reply(anthropic_error="overloaded_error", error_message="Overloaded", headers={"request-id": "req_vrtx_1"}))
    resp = await upstream(fake, sa_file).messages(call(False))
    assert resp.status == 529 and resp.headers["request-id"] == "req_vrtx_1"
    assert json.loads(await resp.read())["error"] == {"type": "overloaded_error", "message": "Overloaded"}


@pytest.mark.asyncio
async def test_count_tokens(fake: VertexFake, sa_file: Path) -> None:
    fake.script.append(Reply(input_tokens=17))
    body = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Count me"}]}
    resp = await upstream(fake, sa_file).count_tokens(call(False, body=body))
    assert resp.status == 200 and json.loads(await resp.read()) == {"input_tokens": 17}
    (rec,) = fake.requests
    assert rec.raw_path == "/v1/projects/fake-project/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict"
    assert rec.json["model"] == MODEL and rec.json["anthropic_version"] == "vertex-2023-10-16"


def test_base_urls() -> None:
    assert base_url_for("global") == "https://aiplatform.googleapis.com/v1"
    assert base_url_for("us") == "https://aiplatform.us.rep.googleapis.com/v1"
    assert base_url_for("eu") == "https://aiplatform.eu.rep.googleapis.com/v1"
    assert base_url_for("europe-west1") == "https://europe-west1-aiplatform.googleapis.com/v1"
    up = VertexUpstream("v", Provider(type="vertex", region="global", project_id="p"), RoutingSettings())
    assert up.base_url == "https://aiplatform.googleapis.com/v1"
