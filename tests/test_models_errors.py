"""GET /v1/models errors come in the caller's API shape: /v1/models is both APIs' path, so the headers tell.
An Anthropic client that leaves out anthropic-version (orgate defaults it elsewhere) still sends x-api-key."""

from __future__ import annotations

import anthropic
import openai
import pytest


def _anthropic_without_version(gateway, key: str, sent: list) -> anthropic.Anthropic:
    """The real SDK sending the key as x-api-key and no anthropic-version (its 2.x sends the key as a Bearer
    token and a version: both Omitted), every request's headers recorded (through the SDK's own HTTP client
    class: it refuses plain httpx objects)."""
    http = anthropic.DefaultHttpxClient(event_hooks={"request": [lambda r: sent.append(r.headers)]})
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0, http_client=http, default_headers={
        "X-Api-Key": key, "Authorization": anthropic.Omit(), "anthropic-version": anthropic.Omit()})


def _anthropic_shape(e: pytest.ExceptionInfo, kind: str) -> None:
    body = e.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == kind, body
    assert body["request_id"] == e.value.response.headers["request-id"]


def test_x_api_key_without_anthropic_version_gets_anthropic_errors(gateway, key):
    sent: list = []
    a = _anthropic_without_version(gateway, key, sent)
    with pytest.raises(anthropic.NotFoundError) as e:
        a.models.retrieve("claude-no-such-model")
    _anthropic_shape(e, "not_found_error")
    with pytest.raises(anthropic.BadRequestError) as e:
        a.models.list(limit=0)
    _anthropic_shape(e, "invalid_request_error")
    assert "limit" in e.value.response.json()["error"]["message"]
    with pytest.raises(anthropic.AuthenticationError) as e:
        _anthropic_without_version(gateway, "sk-ant-not-a-key", sent).models.list()
    _anthropic_shape(e, "authentication_error")
    assert sent and all("x-api-key" in h and not {"anthropic-version", "authorization"} & set(h) for h in sent)
    # ... and Anthropic's paging: 20 a page when no limit is given, as the error shape says who is asking.
    everything = a.models.list(limit=1000).data
    assert len(a.models.list().data) == min(20, len(everything))


def test_openai_sdk_still_gets_openai_errors(gateway, key):
    o = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.NotFoundError) as e:
        o.models.retrieve("claude-no-such-model")
    body = e.value.response.json()
    assert "type" not in body and body["error"]["type"] == "not_found_error", body
    assert len(o.models.list().data) == len(anthropic.Anthropic(base_url=gateway.url, api_key=key)
                                             .models.list(limit=1000).data)  # everything, unpaged
