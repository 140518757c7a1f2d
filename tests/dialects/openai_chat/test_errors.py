from __future__ import annotations

import orjson
import pytest

from orgate.dialects.openai_chat.errors import OPENAI_TYPES, error_body
from orgate.errors import STATUS_KIND


def test_error_body_shape():
    assert orjson.loads(error_body("invalid_request_error", "bad n", param="n")) == {
        "error": {"message": "bad n", "type": "invalid_request_error", "param": "n", "code": None}
    }


@pytest.mark.parametrize(
    "kind,type_,code",
    [
        ("authentication_error", "invalid_request_error", "invalid_api_key"),
        ("permission_error", "permission_error", None),
        ("not_found_error", "not_found_error", None),
        ("rate_limit_error", "rate_limit_error", "rate_limit_exceeded"),
        ("billing_error", "insufficient_quota", "insufficient_quota"),
        ("api_error", "server_error", None),
        ("overloaded_error", "server_error", "overloaded"),
        ("request_too_large", "invalid_request_error", "request_too_large"),
        ("no_such_kind", "api_error", None),
    ],
)
def test_kinds(kind, type_, code):
    assert orjson.loads(error_body(kind, "m"))["error"] == {"message": "m", "type": type_, "param": None, "code": code}


def test_context_length_code_and_explicit_code():
    e = orjson.loads(error_body("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"))
    assert e["error"]["code"] == "context_length_exceeded"
    assert (
        orjson.loads(error_body("not_found_error", "no model", code="model_not_found"))["error"]["code"]
        == "model_not_found"
    )


def test_every_gateway_kind_is_mapped():
    assert set(STATUS_KIND.values()) <= set(OPENAI_TYPES)


def test_sdk_maps_our_body():
    import httpx
    import openai

    def handler(request):
        return httpx.Response(
            429, content=error_body("rate_limit_error", "slow down"), headers={"x-should-retry": "false"}
        )

    client = openai.OpenAI(
        api_key="k",
        base_url="http://gw/v1",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(openai.RateLimitError) as ei:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert ei.value.code == "rate_limit_exceeded" and ei.value.type == "rate_limit_error"
