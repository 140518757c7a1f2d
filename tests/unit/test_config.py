from __future__ import annotations

import pytest

from orgate.config import ConfigError, load_settings


def _write(tmp_path, text):
    p = tmp_path / "orgate.yaml"
    p.write_text(text)
    return p


def test_defaults_load_and_env_overrides(tmp_path):
    s = load_settings(None, env={"ORGATE_SERVER__PORT": "9123", "ORGATE_DATA_DIR": str(tmp_path)})
    assert s.server.port == 9123 and "claude-sonnet-4.5" in s.models and s.providers["anthropic"].api_key == ""


def test_secret_references(tmp_path):
    p = _write(tmp_path, "providers:\n  anthropic: {type: anthropic, api_key: '${MY_KEY}'}\n")
    assert load_settings(p, env={"MY_KEY": "sk-x"}).providers["anthropic"].api_key == "sk-x"
    with pytest.raises(ConfigError, match="MY_KEY is not set"):
        load_settings(p, env={})


def test_config_check_names_every_problem(tmp_path):
    p = _write(tmp_path, """
providers:
  local: {type: openai_compatible}
  weird: {type: carrier-pigeon}
models:
  free-model: {upstream: x}
  nowhere: {deployments: [{provider: missing, model: y}], price: {input: 1, output: 2}}
""")
    with pytest.raises(ConfigError) as e:
        load_settings(p, env={})
    msg = str(e.value)
    assert "providers.local.base_url" in msg and "providers.weird.type" in msg
    assert "models.free-model.price: missing" in msg and "'missing' is not configured" in msg


def test_unknown_field_is_named(tmp_path):
    p = _write(tmp_path, "server: {prot: 1}\n")
    with pytest.raises(ConfigError, match="prot"):
        load_settings(p, env={})


def test_bedrock_api_options_are_checked(tmp_path):
    p = _write(tmp_path, """
providers:
  aws: {type: bedrock, bearer_token: k, api: converse, messages_endpoint: moon}
models:
  claude-opus-5.5: {bedrock_api: both}
""")
    with pytest.raises(ConfigError) as e:
        load_settings(p, env={})
    msg = str(e.value)
    assert "providers.aws.api" in msg and "providers.aws.messages_endpoint" in msg
    assert "models.claude-opus-5.5.bedrock_api" in msg
    s = load_settings(None, env={})
    apis = {m: e.bedrock_api for m, e in s.models.items()}
    assert apis["claude-opus-5.5"] == "messages" and apis["claude-opus-4.7"] == "messages"
    assert apis["claude-opus-4.6"] == "invoke" and apis["claude-haiku-4.5"] == "invoke"
