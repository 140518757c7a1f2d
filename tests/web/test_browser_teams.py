"""Teams and users in the console, in Debian's chromium (headless, Playwright): create a team and a user,
give the user a key, spend with it through the anthropic SDK, see the spend on the team and user pages."""

from __future__ import annotations

import re
import time

import anthropic
import pytest

from tests.web.test_browser import browser, off_loop, page, pytestmark, shot, sign_in, wait_text  # noqa: F401


def test_team_and_user_spend_in_the_console(page, gateway, fake):  # noqa: F811
    tag = str(time.monotonic_ns())[-6:]
    team_name, user_name = f"Platform {tag}", f"Ada {tag}"
    sign_in(page)
    page.get_by_role("link", name="Teams").click()
    page.get_by_label("Name").fill(team_name)
    page.get_by_label("Budget (USD, empty = no cap)").fill("50")
    page.get_by_label("Budget resets").select_option("monthly")
    page.get_by_role("button", name="Create team").click()
    page.get_by_role("heading", level=2, name=re.compile(team_name)).wait_for()
    team_url = page.url
    shot(page, "teams-01-team-created")

    page.get_by_role("link", name="Users").click()
    page.get_by_label("Name").fill(user_name)
    page.get_by_label("Email").fill(f"ada{tag}@example.com")
    page.get_by_label("Default team").select_option(label=team_name)
    page.get_by_label("Budget (USD, empty = no cap)").fill("10")
    page.get_by_role("button", name="Create user").click()
    page.get_by_role("heading", level=2, name=re.compile(user_name)).wait_for()
    user_url = page.url

    page.get_by_label("Key name").fill(f"ada-laptop-{tag}")
    page.get_by_role("button", name=f"Create key for {user_name}").click()
    key = page.locator("#new-key").input_value()
    assert key.startswith("sk-ant-")
    shot(page, "teams-02-user-key")

    client = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    client.messages.create(model="claude-haiku-4.5", max_tokens=32, messages=[{"role": "user", "content": "hello"}])
    kid = off_loop(gateway.query, "SELECT id FROM keys WHERE name = :n", n=f"ada-laptop-{tag}")[0]["id"]
    row = off_loop(gateway.ledger, key_id=kid)[0]
    cost = re.escape(f"${row['cost_micros'] / 1e6:.6f}")

    page.goto(team_url)
    page.reload()  # the ledger writer settles within a fraction of a second: reload until it shows
    for _ in range(30):
        page.get_by_role("heading", level=2, name=re.compile(team_name)).wait_for()
        if re.search(cost, page.locator("#account-facts").inner_text()):
            break
        time.sleep(0.2)
        page.reload()
    wait_text(page.locator("#account-facts"), cost)
    members = page.get_by_role("region", name="Members", exact=True)
    wait_text(members, user_name)
    wait_text(members, cost)
    shot(page, "teams-03-team-spend")

    page.goto(user_url)
    page.reload()
    page.get_by_role("heading", level=2, name=re.compile(user_name)).wait_for()
    wait_text(page.locator("#account-facts"), cost)
    wait_text(page.get_by_role("region", name="Keys", exact=True), cost)
    shot(page, "teams-04-user-spend")

    page.goto(team_url)
    page.reload()
    page.get_by_role("button", name="Disable team").click()
    page.get_by_role("button", name="Enable team").wait_for()
    with pytest.raises(anthropic.PermissionDeniedError):
        client.messages.create(model="claude-haiku-4.5", max_tokens=32, messages=[{"role": "user", "content": "x"}])
