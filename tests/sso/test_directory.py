"""Who a signed-in person becomes, on a real SQLite database migrated to head: the people-and-teams user,
the team from the groups, the internal key, and the `unknown_users` rule."""

from __future__ import annotations

import asyncio

import pytest

from orgate.sso.directory import Directory
from orgate.sso.oidc import Identity
from orgate.sso.policy import NotAllowed
from orgate.sso.settings import SsoSettings
from orgate.sso.store import SsoStore
from orgate.store.accounts_repo import AccountsRepo
from orgate.store.db import make_engine, upgrade
from orgate.store.keys_repo import KeysRepo


def person(sub: str, email: str) -> Identity:
    return Identity("https://idp.example", sub, email, True, sub.title(), ("eng",), None)


@pytest.fixture
async def engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    await asyncio.to_thread(upgrade, url)  # alembic runs its own event loop
    eng = make_engine(url)
    yield eng
    await eng.dispose()


def directory(engine, **kw) -> Directory:
    s = SsoSettings(issuer="https://idp.example", client_id="c", client_secret="s", **kw)
    return Directory(s, SsoStore(engine), KeysRepo(engine), "sk-ant-")


async def test_first_sign_in_creates_user_team_and_a_key_charged_to_it(engine):
    d = directory(engine, default_budget_usd="40")
    row = await d.sign_in(person("u1", "u1@corp.example"), "platform")
    accounts = AccountsRepo(engine)
    user = await accounts.get("user", row["user_id"])
    team = await accounts.find("team", "platform")
    key = await KeysRepo(engine).get(row["key_id"])
    assert user["external_id"] == "https://idp.example#u1" and user["budget_micros"] == 40_000_000
    assert key["user_id"] == user["id"] and key["team_id"] == team["id"]
    assert await accounts.is_member(team["id"], user["id"])
    again = await d.sign_in(person("u1", "u1@corp.example"), "data")  # the groups moved them
    assert again["key_id"] == row["key_id"]
    assert (await KeysRepo(engine).get(row["key_id"]))["team_id"] == (await accounts.find("team", "data"))["id"]


async def test_refuse_mode_admits_only_people_an_admin_created(engine):
    d = directory(engine, unknown_users="refuse")
    with pytest.raises(NotAllowed, match="do not have an account"):
        await d.sign_in(person("stranger", "stranger@corp.example"), "default")
    accounts = AccountsRepo(engine)
    made = await accounts.create("user", name="Known", email="known@corp.example")
    row = await d.sign_in(person("k1", "known@corp.example"), "default")
    assert row["user_id"] == made["id"]
    assert (await accounts.get("user", made["id"]))["external_id"] == "https://idp.example#k1"
    # Another identity presenting the same email never takes that user over.
    with pytest.raises(NotAllowed):
        await d.sign_in(person("k2", "known@corp.example"), "default")


async def test_a_disabled_user_cannot_sign_in(engine):
    d = directory(engine)
    row = await d.sign_in(person("u2", "u2@corp.example"), "default")
    await d.set_status(row["id"], "disabled")
    assert (await AccountsRepo(engine).get("user", row["user_id"]))["status"] == "disabled"
    with pytest.raises(NotAllowed, match="disabled"):
        await d.sign_in(person("u2", "u2@corp.example"), "default")
