"""Finding 1: an admin credential that resolves to blank turns that way in off; it never admits anyone."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from orgate.config import load_settings
from tests.gateway import ADMIN_PASSWORD, ADMIN_TOKEN, Gateway


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_credentials_load_as_disabled(tmp_path, blank):
    from orgate.config_check import notices  # here, so the other tests still run against a build without it

    cfg = tmp_path / "orgate.yaml"
    cfg.write_text("admin: {token: '${ADMIN_TOKEN}', password: '${ADMIN_PASSWORD:-}'}\n")
    s = load_settings(cfg, env={"ADMIN_TOKEN": blank, "ORGATE_DATA_DIR": str(tmp_path)})
    assert s.admin.token is None and s.admin.password is None
    said = "\n".join(notices(s))
    assert "admin.token is unset or empty" in said and "admin.password is unset or empty" in said
    s = load_settings(None, env={"ORGATE_ADMIN__TOKEN": blank, "ORGATE_DATA_DIR": str(tmp_path)})
    assert s.admin.token is None


def test_config_check_says_admin_access_is_disabled(tmp_path):
    p = subprocess.run([sys.executable, "-m", "orgate", "config", "check"], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "ORGATE_DATA_DIR": str(tmp_path), "ORGATE_ADMIN__TOKEN": "",
                                        "ORGATE_ADMIN__PASSWORD": ADMIN_PASSWORD})
    assert p.returncode == 0, p.stderr
    assert "bearer access to /admin/api is disabled" in p.stdout
    assert "admin.password" not in p.stdout


@pytest.fixture(scope="module")
def blank_token_gateway(fake_session) -> Iterator[Gateway]:
    gw = Gateway(fake_session.url, env={"ORGATE_ADMIN__TOKEN": ""}).start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def blank_password_gateway(fake_session) -> Iterator[Gateway]:
    gw = Gateway(fake_session.url, env={"ORGATE_ADMIN__PASSWORD": ""}).start()
    yield gw
    gw.stop()


@pytest.mark.parametrize("auth", ["x", "Bearer", "Basic Zm9vOg==", "bearer x"])
def test_blank_token_admits_no_header(blank_token_gateway, auth):
    r = httpx.get(blank_token_gateway.url + "/admin/api/keys", headers={"authorization": auth})
    assert r.status_code == 403, r.text
    assert "disabled" in r.json()["error"]["message"]


def test_blank_token_leaves_password_login_working(blank_token_gateway):
    bad = httpx.post(blank_token_gateway.url + "/admin/login", json={"password": ""})
    assert bad.status_code == 401 and "set-cookie" not in bad.headers
    good = httpx.post(blank_token_gateway.url + "/admin/login", json={"password": ADMIN_PASSWORD})
    assert good.status_code == 200 and good.json()["authenticated"] is True


@pytest.mark.parametrize("password", ["", " "])
def test_blank_password_never_logs_in(blank_password_gateway, password):
    r = httpx.post(blank_password_gateway.url + "/admin/login", json={"password": password})
    assert r.status_code == 401 and "set-cookie" not in r.headers
    r = httpx.get(blank_password_gateway.url + "/admin/api/keys", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 200
