"""Users and teams through the admin API against a real orgate: create, move a key, members and their
spend, reports by team / user / key with CSV, disabling cuts keys at once."""

from __future__ import annotations

import csv
import io
import time

import anthropic
import httpx
import pytest

from tests.gateway import Gateway


def spend(gateway: Gateway, key: str, model: str = "claude-haiku-4.5") -> None:
    anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0).messages.create(
        model=model, max_tokens=16, messages=[{"role": "user", "content": "hi"}])


def _wait_spent(admin, path: str, timeout: float = 10) -> dict:
    deadline = time.time() + timeout
    while True:
        body = admin.get(path).json()
        if body["data"]["spent_micros"] or time.time() > deadline:
            return body
        time.sleep(0.1)


def test_team_user_key_spend_and_reports(admin, gateway, fake, new_key):
    tag = str(time.monotonic_ns())
    team = admin.post("teams", json={"name": "platform-" + tag, "budget_usd": "2000", "budget_period": "monthly",
                                     "metadata": {"cost_center": "42"}}).json()["data"]
    assert team["budget_micros"] == 2_000_000_000 and team["metadata"] == {"cost_center": "42"}
    user = admin.post("users", json={"name": "Ada " + tag, "email": f"ada{tag}@example.com",
                                     "budget_usd": "300", "default_team_id": team["id"]}).json()["data"]
    key, row = new_key("ada-laptop", user_id=user["id"])
    assert (row["user_id"], row["team_id"]) == (user["id"], team["id"])  # the user's default team
    spend(gateway, key)
    body = _wait_spent(admin, f"teams/{team['id']}")
    assert body["data"]["spent_micros"] == 12 * 1 + 9 * 5  # haiku 4.5 at $1/$5: 12 in, 9 out
    [member] = body["members"]
    assert member["id"] == user["id"] and member["month"]["cost_micros"] == 57
    assert [k["id"] for k in body["keys"]] == [row["id"]] and body["keys"][0]["month"]["requests"] == 1
    u = _wait_spent(admin, f"users/{user['id']}")
    assert u["data"]["spent_micros"] == 57 and [t["id"] for t in u["teams"]] == [team["id"]]
    by_team = admin.get("usage", params={"group": "team"}).json()["data"]
    assert any(r["team_id"] == team["id"] and r["team_name"] == team["name"] and r["cost_micros"] == 57
               and r["input_tokens"] == 12 for r in by_team)
    for group, ident in (("team", team["id"]), ("user", user["id"]), ("key", row["id"])):
        r = admin.get("usage.csv", params={"group": group})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        mine = [x for x in rows if x[f"{group}_id"] == str(ident)]
        assert mine and mine[0]["cost_micros"] == "57" and mine[0]["output_tokens"] == "9"
    mine = httpx.get(gateway.url + "/v1/usage", headers={"x-api-key": key}).json()  # the key holder's view
    assert (mine["team"]["name"], mine["team"]["spent_micros"], mine["user"]["remaining_micros"]) == (
        team["name"], 57, 300_000_000 - 57)
    ledger = admin.get("ledger", params={"team_id": team["id"]}).json()["data"]
    assert [(x["key_id"], x["user_id"], x["team_id"]) for x in ledger] == [(row["id"], user["id"], team["id"])]
    lcsv = list(csv.DictReader(io.StringIO(admin.get("ledger.csv", params={"user_id": user["id"]}).text)))
    assert [(x["user_id"], x["team_id"]) for x in lcsv] == [(str(user["id"]), str(team["id"]))]


def test_move_a_key_only_into_a_team_of_its_user(admin, gateway, fake, new_key):
    tag = str(time.monotonic_ns())
    a = admin.post("teams", json={"name": "a-" + tag}).json()["data"]
    b = admin.post("teams", json={"name": "b-" + tag}).json()["data"]
    user = admin.post("users", json={"name": "Bo", "default_team_id": a["id"]}).json()["data"]
    _, row = new_key("bo-ci", user_id=user["id"])
    r = admin.patch(f"keys/{row['id']}", json={"team_id": b["id"]})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("team_id:")
    assert admin.post(f"teams/{b['id']}/members", json={"user_id": user["id"]}).status_code == 200
    r = admin.patch(f"keys/{row['id']}", json={"team_id": b["id"]})
    assert r.status_code == 200 and r.json()["data"]["team_id"] == b["id"]
    assert admin.post("users", json={"name": "x", "default_team_id": 999999}).status_code == 404
    assert admin.post("teams", json={"name": "a-" + tag}).json()["error"]["message"].startswith("name:")
    assert admin.post("users", json={"name": "x", "colour": "red"}).json()["error"]["message"].startswith("colour:")


@pytest.mark.parametrize("level", ["users", "teams"])
def test_disable_cuts_keys_at_once_and_enable_restores(admin, gateway, fake, new_key, level):
    tag = str(time.monotonic_ns())
    team = admin.post("teams", json={"name": "t-" + tag}).json()["data"]
    user = admin.post("users", json={"name": "Cy", "default_team_id": team["id"]}).json()["data"]
    key, _ = new_key("cy", user_id=user["id"])
    spend(gateway, key)
    ident = user["id"] if level == "users" else team["id"]
    assert admin.post(f"{level}/{ident}/disable").json()["data"]["status"] == "disabled"
    with pytest.raises(anthropic.PermissionDeniedError) as e:  # the very next request: no grace period
        spend(gateway, key)
    assert "disabled" in e.value.message
    admin.post(f"{level}/{ident}/enable")
    spend(gateway, key)
