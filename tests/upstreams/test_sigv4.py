"""Our SigV4 signer against botocore's SigV4Auth, header for header."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from orgate.config import Provider
from orgate.upstreams.sigv4 import AwsAuth, AwsCredentials, sign

NOW = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
KEYS = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
TEMP = AwsCredentials("ASIAEXAMPLE", "tempsecret/+=", "FQoGZXIvYXdzEJr//////////wEaDOr+token==")
BASE = "https://bedrock-runtime.us-east-1.amazonaws.com"


def botocore_sign(monkeypatch: pytest.MonkeyPatch, method: str, url: str, headers: dict, body: bytes, creds: AwsCredentials, region: str, service: str) -> dict:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    req = AWSRequest(method=method, url=url, data=body, headers=headers)
    botocore.auth.SigV4Auth(Credentials(creds.access_key, creds.secret_key, creds.token), service, region).add_auth(req)
    return {k.lower(): v for k, v in req.headers.items()}


def model_url(model: str, action: str = "invoke", base: str = BASE) -> str:
    return f"{base}/model/{quote(model, safe='')}/{action}"


CASES = [
    ("POST", model_url("anthropic.claude-haiku-4-5-20251001-v1:0"), {"content-type": "application/json", "accept": "application/json"}, b'{"max_tokens":5}', KEYS, "us-east-1"),
    ("POST", model_url("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "invoke-with-response-stream"), {"content-type": "application/json", "x-amzn-bedrock-accept": "application/json"}, '{"text":"héllo ✓"}'.encode(), TEMP, "us-east-1"),
    ("POST", model_url("arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-opus-4-5-20251101-v1:0", base="https://bedrock-runtime.eu-west-1.amazonaws.com"), {"content-type": "application/json"}, b"{}", KEYS, "eu-west-1"),
    ("POST", model_url("anthropic.claude-opus-4-7", "count-tokens", base="http://127.0.0.1:8123"), {"content-type": "application/json", "x-custom": "  spaced   out  value "}, b"", KEYS, "us-west-2"),
    ("GET", f"{BASE}/foundation-models?byProvider=anthropic&byOutputModality=TEXT", {}, b"", TEMP, "us-east-1"),
    ("POST", "https://bedrock-runtime.us-east-1.amazonaws.com:443/model/apac.anthropic.claude-sonnet-4-6/invoke", {"Content-Type": "application/json"}, b'{"a":1}', KEYS, "us-east-1"),
]


@pytest.mark.parametrize(("method", "url", "headers", "body", "creds", "region"), CASES)
def test_matches_botocore(monkeypatch: pytest.MonkeyPatch, method: str, url: str, headers: dict, body: bytes, creds: AwsCredentials, region: str) -> None:
    ours = sign(method, url, headers, body, creds, region, "bedrock", now=NOW)
    theirs = botocore_sign(monkeypatch, method, url, headers, body, creds, region, "bedrock")
    assert ours["authorization"] == theirs["authorization"]
    assert ours["x-amz-date"] == theirs["x-amz-date"]
    assert ours.get("x-amz-security-token") == theirs.get("x-amz-security-token")


def test_aws_suite_get_vanilla() -> None:
    # AWS SigV4 test suite "get-vanilla": GET / on example.amazonaws.com, service "service".
    out = sign("GET", "https://example.amazonaws.com/", {}, b"", KEYS, "us-east-1", "service", now=datetime(2015, 8, 30, 12, 36, tzinfo=UTC))
    assert out["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )


def test_body_change_changes_signature() -> None:
    a = sign("POST", model_url("anthropic.x"), {}, b'{"a":1}', KEYS, "us-east-1", now=NOW)
    b = sign("POST", model_url("anthropic.x"), {}, b'{"a":2}', KEYS, "us-east-1", now=NOW)
    assert a["authorization"] != b["authorization"]


def test_unsigned_headers_left_out() -> None:
    out = sign("POST", model_url("anthropic.x"), {"User-Agent": "x", "Connection": "keep-alive", "content-length": "3"}, b"abc", KEYS, "us-east-1", now=NOW)
    assert "SignedHeaders=host;x-amz-date," in out["authorization"]


def test_credentials_precedence() -> None:
    p = Provider(type="bedrock", aws_access_key_id="AK", aws_secret_access_key="SK", aws_session_token="TK")
    env = {"AWS_BEARER_TOKEN_BEDROCK": "envbearer", "AWS_ACCESS_KEY_ID": "EAK", "AWS_SECRET_ACCESS_KEY": "ESK"}
    assert AwsAuth(p, "us-east-1", env=env).static == AwsCredentials("AK", "SK", "TK")
    assert AwsAuth(Provider(type="bedrock", bearer_token="cfg", aws_access_key_id="AK", aws_secret_access_key="SK"), "r", env=env).bearer == "cfg"
    assert AwsAuth(Provider(type="bedrock"), "r", env=env).bearer == "envbearer"
    env.pop("AWS_BEARER_TOKEN_BEDROCK")
    env["AWS_SESSION_TOKEN"] = "ETK"
    assert AwsAuth(Provider(type="bedrock"), "r", env=env).static == AwsCredentials("EAK", "ESK", "ETK")


@pytest.mark.asyncio
async def test_bearer_headers() -> None:
    auth = AwsAuth(Provider(type="bedrock", bearer_token="bedrock-api-key-abc"), "us-east-1", env={})
    h = await auth.headers("POST", model_url("anthropic.x"), {"Content-Type": "application/json"}, b"{}")
    assert h == {"content-type": "application/json", "authorization": "Bearer bedrock-api-key-abc"}
