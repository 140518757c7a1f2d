"""The real Claude Code (>= 2.1.278; pinned 2.1.330, as in the protocol notes §8) signs in to orgate through
its interactive /login, the device flow approved by a browser leg played over HTTP against the fake IdP;
then `claude -p` in the same config dir completes a tool-using turn with that sign-in.

What orgate must have seen: the discovery document and device flow from Claude Code, the managed-settings
fetch (with the bearer), /v1/messages with `Authorization: Bearer <gateway token>` (ledger rows on the
person's key; no API key exists on that machine) and the `x-claude-code-session-id` header (sessions table).
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

import httpx
import orjson
import pytest

from tests.clients.helpers import client_home, tool_then_text
from tests.gateway import ADMIN_TOKEN
from tests.sso import claude_tmux
from tests.sso.helpers import Browser, sso_gateway

ROOT = Path(__file__).resolve().parents[2]
CLAUDE = Path(os.environ.get("SSO_TEST_CLAUDE_BIN", ROOT / ".clients/cc-gateway/node_modules/.bin/claude"))
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
MIN_VERSION = (2, 1, 278)


def _version() -> tuple[int, ...] | None:
    if not CLAUDE.exists():
        return None
    out = subprocess.run([str(CLAUDE), "--version"], capture_output=True, text=True, timeout=60).stdout
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", out.strip())
    return tuple(int(x) for x in m.groups()) if m else None


pytestmark = [pytest.mark.clients]


@pytest.fixture(scope="module")
def claude_bin() -> str:
    why = claude_tmux.available()
    version = _version()
    if why is not None or version is None or version < MIN_VERSION:
        pytest.skip(why or f"Claude Code >= 2.1.278 not found at {CLAUDE} (scripts/test.sh installs it)")
    return str(CLAUDE)


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "OTEL_"))}
    return {**env, "HOME": str(home), "CLAUDE_CONFIG_DIR": str(home / "cfg"), "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1", "TERM": "xterm-256color", "BROWSER": "true"}


STEPS = [  # (text on the screen, keys), first match wins; the sign-in code is handled separately
    ("Enter to connect", ["Enter"]),
    ("Trust gateway", ["Up", "Enter"]),
    ("Connected to Cloud gateway", ["Enter"]),
    ("require approval", ["Enter"]),
    ("Security notes", ["Enter"]),
    ("text style", ["Enter"]),
    ("Yes, I trust this folder", ["Down", "Enter"]),  # the default is "No, exit"
    ("Yes, proceed", ["Enter"]),
]


def _ready(screen: str) -> bool:
    return "for shortcuts" in screen or ("Cloud gateway" in screen and "\u276f" in screen and "Code:" not in screen
                                         and not any(text in screen for text, _ in STEPS))


def _interactive_login(tmux: claude_tmux.Tmux, gw, deadline_s: float = 240) -> None:
    import time

    approved = False
    end = time.time() + deadline_s
    while time.time() < end:
        screen = tmux.screen()
        if _ready(screen) and approved:
            return
        code = claude_tmux.CODE.search(screen)
        if code and not approved and "Code" in screen:
            device = {"user_code": code.group(1),
                      "verification_uri_complete": f"{gw.url}/device?user_code={code.group(1)}"}
            assert Browser(gw).sign_in(device).status_code == 200
            approved = True
            time.sleep(2)
            continue
        for text, keys in STEPS:
            if text in screen:
                tmux.keys(*keys)
                break
        time.sleep(1.5)
    raise AssertionError(f"sign-in did not finish; screens in {tmux.log}")


def test_real_claude_code_signs_in_and_runs_a_tool_turn(claude_bin, fake_session, idp_session, tmp_path):
    fake, idp = fake_session, idp_session
    fake.reset()
    idp.reset()
    gw = sso_gateway(fake.url, idp).start(timeout=120)
    try:
        httpx.put(gw.url + "/admin/api/sso/managed-settings/global", headers=ADMIN, json={"settings": {
            "env": {"CLAUDE_CODE_ENABLE_TELEMETRY": "1", "OTEL_METRICS_EXPORTER": "otlp",
                    "OTEL_LOGS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                    "OTEL_METRIC_EXPORT_INTERVAL": "2000", "OTEL_LOGS_EXPORT_INTERVAL": "1000"}}}).raise_for_status()
        with client_home("cc-sso") as home:
            _sign_in_and_work(claude_bin, gw, fake, home, tmp_path)
    finally:
        gw.stop()


def _sign_in_and_work(claude_bin, gw, fake, home: Path, tmp_path: Path) -> None:
    policy = tmp_path / "etc-claude-code"
    policy.mkdir()
    (policy / "managed-settings.json").write_text(orjson.dumps(
        {"forceLoginMethod": "gateway", "forceLoginGatewayUrl": gw.url}).decode())
    work = home / "project"
    work.mkdir()
    tmux = claude_tmux.Tmux(f"orgate-sso-{uuid.uuid4().hex[:8]}", tmp_path / "screens.log")
    tmux.start(policy, claude_bin, _env(home), work)
    try:
        _interactive_login(tmux, gw)
    finally:
        tmux.kill()
    creds = orjson.loads((home / "cfg" / ".credentials.json").read_text())
    assert creds["enterpriseGateway"]["url"].rstrip("/") == gw.url
    person = gw.query("SELECT * FROM sso_users WHERE email = 'alice@example.com'")[0]
    target = work / "hello.txt"
    fake.default = tool_then_text("Write", {"file_path": str(target), "content": "hello via sso\n"}, "Done: wrote it.")
    mark = gw.ledger_mark()  # after the sign-in's rows
    cmd = f"{claude_bin} -p 'Create hello.txt' --permission-mode acceptEdits --output-format json"
    p = subprocess.run(claude_tmux.in_namespace(tmp_path / "etc-claude-code", cmd), env=_env(home), cwd=work,
                       capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert target.read_text() == "hello via sso\n"
    rows = gw.ledger(2, after=mark)
    assert {r["key_id"] for r in rows if r["endpoint"] == "messages"} == {person["key_id"]}
    assert any(r["status"] == 200 for r in rows)
    sessions = httpx.get(gw.url + "/admin/api/sso/sessions", headers=ADMIN).json()["data"]
    assert any(s["email"] == "alice@example.com" and s["requests"] >= 2 for s in sessions)
    summary = httpx.get(gw.url + "/admin/api/sso/telemetry?by=user", headers=ADMIN).json()["data"]
    seen = {r["metric"]: r["value"] for r in summary if r["email"] == "alice@example.com"}
    assert seen.get("gateway:managed_settings_200", 0) + seen.get("gateway:managed_settings_304", 0) >= 2
    print("orgate saw, per person:", seen)
