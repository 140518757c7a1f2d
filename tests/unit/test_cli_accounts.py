"""`orgate teams` / `orgate users` / `orgate keys --user --team` against a real SQLite database."""

from __future__ import annotations

import orjson

from tests.unit.test_cli import _orgate


def test_teams_users_and_a_key_moved_between_teams(tmp_path):
    d = str(tmp_path)
    assert _orgate("teams", "create", "--name", "platform", "--budget", "2000", "--period", "monthly",
                   data_dir=d).returncode == 0
    assert _orgate("teams", "create", "--name", "research", data_dir=d).returncode == 0
    u = _orgate("users", "create", "--name", "Ada", "--email", "ada@example.com", "--team", "platform",
                "--budget", "300", "--models", "claude-haiku-4.5", "--json", data_dir=d)
    user = orjson.loads(u.stdout)
    assert user["budget_micros"] == 300_000_000 and user["allowed_models"] == ["claude-haiku-4.5"]
    k = orjson.loads(_orgate("keys", "create", "--name", "ada-laptop", "--user", "ada@example.com", "--json",
                             data_dir=d).stdout)
    assert (k["user_id"], k["team_id"]) == (user["id"], user["default_team_id"])  # the default team
    moved = _orgate("keys", "update", "ada-laptop", "--team", "research", data_dir=d)
    assert moved.returncode != 0 and "not a member of team" in moved.stderr + moved.stdout
    assert _orgate("teams", "add-member", "research", "Ada", data_dir=d).returncode == 0
    assert _orgate("keys", "update", "ada-laptop", "--team", "research", data_dir=d).returncode == 0
    shown = orjson.loads(_orgate("teams", "show", "research", data_dir=d).stdout)
    assert [m["name"] for m in shown["members"]] == ["Ada"] and [x["name"] for x in shown["keys"]] == ["ada-laptop"]
    assert _orgate("users", "disable", "Ada", data_dir=d).returncode == 0
    users = orjson.loads(_orgate("users", "list", "--json", data_dir=d).stdout)
    assert users[0]["status"] == "disabled"
