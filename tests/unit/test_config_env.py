"""Environment overrides are typed by the field they set; secrets stay opaque; the README's examples load."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest
import yaml

from orgate.config import ConfigError, load_settings
from tests.paths import REPO


def settings(tmp_path, **env: str):
    return load_settings(None, env={"ORGATE_DATA_DIR": str(tmp_path), **env})


def test_digits_reach_a_string_field_verbatim(tmp_path):
    s = settings(tmp_path, ORGATE_ADMIN__PASSWORD="12345678", ORGATE_ADMIN__TOKEN="007")
    assert s.admin.password == "12345678" and s.admin.token == "007"


def test_a_hash_after_a_space_is_part_of_the_value(tmp_path):
    s = settings(tmp_path, ORGATE_PROVIDERS__ANTHROPIC__API_KEY="abc #def")
    assert s.providers["anthropic"].api_key == "abc #def"


@pytest.mark.parametrize("value", ["~", "null", "Null", "*Sup3rS3cret", "!!x", "&anchor", "  spaced  ", "[not, a, list]",
                                   "{a: 1}", "true", "a${HOME}b", "'quoted'", "- dash", "%percent", "@at", "`tick`"])
def test_yaml_syntax_in_a_secret_is_just_characters(tmp_path, value):
    s = settings(tmp_path, ORGATE_ADMIN__PASSWORD=value, ORGATE_PROVIDERS__ANTHROPIC__API_KEY=value)
    assert s.admin.password == value and s.providers["anthropic"].api_key == value


def test_numbers_and_booleans_are_parsed(tmp_path):
    s = settings(tmp_path, ORGATE_SERVER__PORT=" 9123 ", ORGATE_BUDGETS__LEASE_HOLD_SECONDS="1.5",
                 ORGATE_LEDGER__ENABLED="false", ORGATE_SERVER__LOG_PROMPTS="yes")
    assert s.server.port == 9123 and s.budgets.lease_hold_seconds == 1.5
    assert s.ledger.enabled is False and s.server.log_prompts is True


@pytest.mark.parametrize(("var", "value", "expected"), [
    ("ORGATE_SERVER__PORT", "eighty-eighty", "an integer"),
    ("ORGATE_SERVER__PORT", "80.5", "an integer"),
    ("ORGATE_BUDGETS__LEASE_HOLD_SECONDS", "soon", "a number"),
    ("ORGATE_LEDGER__ENABLED", "perhaps", "a boolean"),
    ("ORGATE_PROVIDERS__ANTHROPIC__TIMEOUTS", "{connect: 2", "JSON"),
])
def test_a_bad_typed_value_names_the_variable_never_the_value(tmp_path, var, value, expected):
    with pytest.raises(ConfigError) as e:
        settings(tmp_path, **{var: value})
    assert var in str(e.value) and expected in str(e.value) and value not in str(e.value)


def test_lists_and_maps_are_json(tmp_path):
    s = settings(tmp_path, ORGATE_PROVIDERS__ANTHROPIC__TIMEOUTS='{"connect": 2.5, "idle": 60}',
                 ORGATE_MODELS__LOCAL__DEPLOYMENTS='[{"provider": "anthropic", "model": "m"}]',
                 ORGATE_MODELS__LOCAL__PRICE='{"input": "1", "output": "2"}')
    assert s.providers["anthropic"].timeouts == {"connect": 2.5, "idle": 60}
    assert s.models["local"].deployments[0].model == "m" and s.models["local"].price.input == "1"


def test_prefix_sharing_variables_that_name_no_field_are_not_overrides(tmp_path):
    cfg = tmp_path / "orgate.yaml"
    cfg.write_text('admin: {password: "${ORGATE_ADMIN_PASSWORD}", token: "${ORGATE_ADMIN_TOKEN}"}\n')
    s = load_settings(cfg, env={"ORGATE_DATA_DIR": str(tmp_path), "ORGATE_ADMIN_PASSWORD": "~ #1",
                                "ORGATE_ADMIN_TOKEN": "tok", "ORGATE_SERVER__PROT": "1", "ORGATE_TEST_PG": "x"})
    assert (s.admin.password, s.admin.token) == ("~ #1", "tok") and s.server.port == 8080


def test_the_readme_examples_load(tmp_path):
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Configuration"):readme.index("## Money and budgets")]
    first, *others = re.findall(r"```yaml\n(.*?)```", section, re.S)
    cfg = tmp_path / "orgate.yaml"
    for block in others:  # fragments: each loads on its own
        cfg.write_text(block)
        assert load_settings(cfg, env={"ORGATE_DATA_DIR": str(tmp_path)})
    cfg.write_text(first)
    examples = {k: shlex.split(v)[0] for k, v in re.findall(r"`(ORGATE_[A-Z_]+)=([^`]+)`", readme)}  # as a shell reads them
    assert {"ORGATE_SERVER__PORT", "ORGATE_PROVIDERS__ANTHROPIC__TIMEOUTS", "ORGATE_ADMIN__PASSWORD"} <= set(examples)
    secrets = {"ORGATE_ADMIN_PASSWORD": "12345678", "ORGATE_ADMIN_TOKEN": "~ #tok", "ANTHROPIC_API_KEY": "sk-ant-x"}
    file_only = load_settings(cfg, env={"ORGATE_DATA_DIR": str(tmp_path), **secrets})
    assert file_only.admin.password == "12345678" and file_only.admin.token == "~ #tok"
    assert set(file_only.providers) == {"anthropic", "bedrock", "vertex"}
    s = load_settings(cfg, env={"ORGATE_DATA_DIR": str(tmp_path), **secrets, **examples})
    assert s.server.port == int(examples["ORGATE_SERVER__PORT"])
    assert s.providers["anthropic"].base_url == examples["ORGATE_PROVIDERS__ANTHROPIC__BASE_URL"]
    assert s.admin.password == examples["ORGATE_ADMIN__PASSWORD"]  # the override wins over the file
    assert s.providers["anthropic"].timeouts == {"connect": 5}


def _check(tmp_path, *fields: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ORGATE_")}
    return subprocess.run([sys.executable, "-m", "orgate", "config", "check", *fields], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env={**base, "ORGATE_DATA_DIR": str(tmp_path), **env})


def test_config_check_shows_each_fields_source_without_secrets(tmp_path):
    cfg = tmp_path / "orgate.yaml"
    cfg.write_text(yaml.safe_dump({"server": {"host": "0.0.0.0"}, "redis_url": "redis://:hunter2@cache:6379/0",
                                   "admin": {"token": "${MY_ADMIN_TOKEN}"}}))
    p = _check(tmp_path, "server.port", "server.host", "admin.password", "admin.token", "redis_url",
               "server.max_body_bytes", "admin", ORGATE_CONFIG=str(cfg), ORGATE_SERVER__PORT="9001",
               ORGATE_ADMIN__PASSWORD="pw-zebra-42", MY_ADMIN_TOKEN="tok-lion-43", ORGATE_ADMIN_PASSWORD="x")
    assert p.returncode == 0, p.stderr
    lines = dict(line.split(" = ", 1) for line in p.stdout.splitlines() if " = " in line)
    assert lines["server.port"] == "9001  (environment ORGATE_SERVER__PORT)"
    assert lines["server.host"] == f"0.0.0.0  (file {cfg})"
    assert lines["server.max_body_bytes"].endswith("(default)")
    assert lines["admin.password"] == "(secret, set)  (environment ORGATE_ADMIN__PASSWORD)"
    assert lines["admin.token"] == f"(secret, set)  (file {cfg} via ${{MY_ADMIN_TOKEN}})"
    assert lines["redis_url"].startswith("redis://:***@cache:6379/0")
    out = p.stdout + p.stderr
    assert "pw-zebra-42" not in out and "tok-lion-43" not in out and "hunter2" not in out
    assert "ORGATE_ADMIN_PASSWORD names no setting" in out


def test_config_check_refuses_an_unknown_field_and_a_bad_port(tmp_path):
    assert "no.such is not a setting" in _check(tmp_path, "no.such").stderr
    p = _check(tmp_path, ORGATE_SERVER__PORT="80a0")
    assert p.returncode == 2 and "ORGATE_SERVER__PORT: expected an integer" in p.stderr and "80a0" not in p.stderr
