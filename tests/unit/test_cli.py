from __future__ import annotations

import os
import subprocess
import sys

import orjson


def _orgate(*args: str, data_dir: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orgate", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "ORGATE_DATA_DIR": data_dir, **env})


def test_config_check_says_what_is_wrong_after_the_subcommand(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: {prot: 1}\n")
    p = _orgate("config", "check", "--config", str(bad), data_dir=str(tmp_path))
    assert p.returncode == 2 and "unknown field `prot`" in p.stderr and "$.server" in p.stderr


def test_keys_shown_once_then_only_the_prefix(tmp_path):
    created = _orgate("keys", "create", "--name", "alice", "--budget", "2.50", "--json", data_dir=str(tmp_path))
    assert created.returncode == 0, created.stderr
    row = orjson.loads(created.stdout)
    assert row["key"].startswith("sk-ant-") and row["budget_micros"] == 2_500_000 and "hash" not in row
    listed = _orgate("keys", "list", "--json", data_dir=str(tmp_path))
    assert row["key"] not in listed.stdout and row["prefix"] in listed.stdout
    assert _orgate("keys", "disable", "alice", data_dir=str(tmp_path)).returncode == 0
    assert orjson.loads(_orgate("keys", "list", "--json", data_dir=str(tmp_path)).stdout)[0]["status"] == "disabled"
