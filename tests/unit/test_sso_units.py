"""The sign-in policy pieces that need no server: claim rules, settings merge and checksum, limits, codes."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from orgate.server.sso_oauth import PerAddress
from orgate.sso import managed, telemetry
from orgate.sso.device import USER_CODE_ALPHABET, new_user_code, normalize_user_code
from orgate.sso.oidc import Identity, _flag, _groups
from orgate.sso.policy import NotAllowed, admin_allowed, admit
from orgate.sso.settings import SsoSettings, validate
from orgate.sso.tokens import looks_like_gateway_token


def who(email="dev@corp.example", groups=("eng",), verified=True) -> Identity:
    return Identity("https://idp", "sub1", email, verified, "Dev", tuple(groups), None)


S = SsoSettings(issuer="https://idp", client_id="c", client_secret="s", allowed_domains=["corp.example"],
                allowed_groups=["eng", "ops"], team_groups={"ops": "operations", "eng": "platform"},
                admin_groups=["admins"])


def test_claim_rules():
    assert admit(S, who()).team == "platform"
    assert admit(S, who(groups=("eng", "ops"))).team == "operations"  # the first mapping that matches wins
    assert admit(SsoSettings(issuer="i", client_id="c"), who(groups=())).team == "default"
    with pytest.raises(NotAllowed, match="domain"):
        admit(S, who(email="dev@corp.example.evil"))
    with pytest.raises(NotAllowed, match="domain"):
        admit(S, who(email=None))
    with pytest.raises(NotAllowed, match="group"):
        admit(S, who(groups=("sales",)))
    with pytest.raises(NotAllowed, match="verified"):
        admit(S, who(verified=False))
    assert admit(S, who(verified=None)).team == "platform"  # absent claim: not a refusal
    assert admin_allowed(S, who(groups=("eng", "admins"))) and not admin_allowed(S, who())
    assert not admin_allowed(S, who(groups=("admins",)))  # admins must pass the ordinary rules too


def test_claim_shapes():
    assert _groups(["a", "b"]) == ("a", "b") and _groups("a, b") == ("a", "b") and _groups(None) == ()
    assert _flag("false") is False and _flag("True") is True and _flag(False) is False and _flag(1) is None


def test_settings_validation():
    assert validate(SsoSettings()) == []
    problems = validate(SsoSettings(issuer="i", client_id="c", unknown_users="maybe", scopes=["email"],
                                    access_ttl_seconds=60, public_url="http://gw.example"))
    assert len(problems) == 5


def test_managed_merge_and_checksum_match_claude_codes_own():
    base = {"env": {"A": "1", "B": "1"}, "permissions": {"deny": ["x"], "allow": ["r"]}, "model": "m1"}
    team = {"env": {"B": "2"}, "permissions": {"deny": ["y", "x"], "allow": ["w"]}, "model": "m2"}
    merged = managed.merge(base, team)
    assert merged == {"env": {"A": "1", "B": "2"}, "permissions": {"deny": ["x", "y"], "allow": ["w"]},
                      "model": "m2"}
    env = managed.envelope({"": base, "t": team}, "t")
    expected = hashlib.sha256(json.dumps(merged, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert env["checksum"] == f"sha256:{expected}" and managed.etag(env) == f'"sha256:{expected}"'
    assert managed.envelope({}, "t") is None and managed.envelope({"": {}}, "t")["settings"] == {}
    assert managed.not_modified(f'W/"sha256:{expected}", "x"', managed.etag(env))
    assert not managed.not_modified(None, managed.etag(env)) and not managed.not_modified('"x"', managed.etag(env))


def test_per_address_limit():
    lim = PerAddress(3, 600)
    assert [lim.allow("a") for _ in range(4)] == [True, True, True, False]
    assert lim.allow("b")


def test_user_codes():
    code = new_user_code()
    assert len(code) == 9 and code[4] == "-" and all(c in USER_CODE_ALPHABET for c in code.replace("-", ""))
    assert normalize_user_code(code.lower().replace("-", " ")) == code
    assert normalize_user_code("ABCD-EFGH") == ""  # vowels are never in a code


def test_gateway_token_shape():
    assert looks_like_gateway_token("eyJhbGciOi.eyJzdWIi.c2ln")
    assert not looks_like_gateway_token("sk-ant-abc") and not looks_like_gateway_token("eyJonly.two")


def test_telemetry_inflate_limit_and_garbage():
    assert telemetry.inflate(gzip.compress(b"abc"), "gzip") == b"abc"
    with pytest.raises(ValueError):
        telemetry.inflate(gzip.compress(b"\0" * (telemetry.MAX_INFLATED + 10)), "gzip")
    with pytest.raises(Exception):  # noqa: B017 -- any decode error; the route counts it as undecodable
        telemetry.decode("metrics", b"\xff\xff\xff", "application/x-protobuf")


def test_the_docs_examples_load(tmp_path):
    import re

    from orgate.config import load_settings
    from tests.paths import REPO

    doc = (REPO / "docs" / "claude-code-sso.md").read_text()
    cfg = tmp_path / "orgate.yaml"
    cfg.write_text(re.findall(r"```yaml\n(.*?)```", doc, re.S)[0])
    s = load_settings(cfg, env={"ORGATE_DATA_DIR": str(tmp_path), "ORGATE_SSO_CLIENT_SECRET": "x"})
    assert s.sso.enabled and s.sso.team_groups["data"] == "data-science" and s.sso.client_secret == "x"
    machine = json.loads(re.findall(r"```json\n(.*?)```", doc, re.S)[0])
    assert machine["forceLoginMethod"] == "gateway" and machine["forceLoginGatewayUrl"].startswith("https://")
