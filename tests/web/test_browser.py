"""The console and /usage in Debian's chromium (headless, Playwright): the key lifecycle end to end."""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anthropic
import pytest

from tests.gateway import ADMIN_PASSWORD, Gateway

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian chromium at /usr/bin/chromium")]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, gateway: Gateway):
    ctx = browser.new_context(permissions=["clipboard-read", "clipboard-write"], base_url=gateway.url,
                              viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.on("dialog", lambda d: d.accept())
    yield pg
    ctx.close()


def off_loop(fn, *args, **kw):
    """Gateway's database helpers use asyncio.run, which cannot nest in sync Playwright's running loop."""
    with ThreadPoolExecutor(1) as ex:
        return ex.submit(fn, *args, **kw).result()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page) -> None:
    page.goto("/admin")
    page.get_by_label("Admin password (or admin token)").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Overview").wait_for()


def sdk(gateway: Gateway, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


def wait_text(locator, pattern: str, timeout: float = 10) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if re.search(pattern, locator.inner_text()):
            return
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} not in {locator.inner_text()[:500]!r}")


def test_key_lifecycle_in_the_browser(page, gateway, fake):
    page.goto("/admin")
    shot(page, "01-login")
    sign_in(page)
    shot(page, "02-overview")

    page.get_by_role("link", name="Keys").click()
    page.get_by_label("Name").fill("browser-key")
    page.get_by_label("Budget (USD, empty = no cap)").fill("1")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key")
    secret.wait_for()
    key = secret.input_value()
    assert key.startswith("sk-ant-")
    page.get_by_role("button", name="Copy").click()
    page.get_by_text("Copied.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == key
    shot(page, "03-keys-created")

    m = sdk(gateway, key).messages.create(model="claude-sonnet-4.5", max_tokens=32,
                                          messages=[{"role": "user", "content": "hello"}])
    assert m.content[0].text
    kid = off_loop(gateway.query, "SELECT id FROM keys WHERE name='browser-key'")[0]["id"]
    row = off_loop(gateway.ledger, key_id=kid)[0]
    cost = f"${row['cost_micros'] / 1e6:.6f}"

    page.reload()
    page.get_by_role("link", name="browser-key").first.click()
    page.get_by_role("heading", name=re.compile("browser-key")).wait_for()
    wait_text(page.locator("dl.kv"), re.escape(cost))
    wait_text(page.locator("table").last, "claude-sonnet-4.5")
    shot(page, "04-key-detail")

    usage = page.context.new_page()
    usage.goto("/usage")
    usage.get_by_label("API key", exact=True).fill(key)
    usage.get_by_role("button", name="Show usage").click()
    usage.get_by_text("This key is active.").wait_for()
    wait_text(usage.locator("#report"), re.escape(cost))
    assert key not in usage.url
    shot(usage, "05-usage")

    page.get_by_role("button", name="Disable key").click()
    page.get_by_role("button", name="Enable key").wait_for()
    with pytest.raises(anthropic.PermissionDeniedError):
        sdk(gateway, key).messages.create(model="claude-sonnet-4.5", max_tokens=32,
                                          messages=[{"role": "user", "content": "hello"}])
    shot(page, "06-key-disabled")
    usage.get_by_label("API key", exact=True).fill(key)
    usage.get_by_role("button", name="Show usage").click()
    usage.get_by_text(re.compile("This key is disabled")).wait_for()
    shot(usage, "07-usage-disabled")
    usage.set_viewport_size({"width": 390, "height": 844})
    shot(usage, "08-usage-phone")

    page.get_by_role("link", name="Models & providers").click()
    page.locator("caption", has_text="Providers").wait_for()
    shot(page, "09-models")
    page.get_by_role("link", name="Request ledger").click()
    page.get_by_role("button", name="Apply filters").wait_for()
    wait_text(page.locator("table"), "browser-key")
    href = page.get_by_role("link", name="Export CSV").get_attribute("href")
    assert href.startswith("/admin/api/ledger.csv")
    shot(page, "10-ledger")


def test_wrong_password_refused(page):
    page.goto("/admin")
    page.get_by_label("Admin password (or admin token)").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Wrong admin password.").wait_for()
    assert page.locator("#nav").is_hidden()
    shot(page, "11-login-wrong-password")


def test_key_holder_key_refused_as_admin(page, new_key):
    key, _ = new_key("holder")
    page.goto("/admin")
    page.get_by_label("Admin password (or admin token)").fill(key)
    page.get_by_role("button", name="Sign in").click()
    wait_text(page.locator("#status"), "API keys cannot sign in to the admin console")
    assert page.locator("#nav").is_hidden()
    status = page.evaluate("""async (k) => (await fetch('/admin/api/keys', {headers: {authorization: 'Bearer ' + k}})).status""", key)
    assert status == 403


def test_post_without_csrf_token_refused(page):
    sign_in(page)
    status = page.evaluate("""async () => (await fetch('/admin/api/keys', {method: 'POST',
        headers: {'content-type': 'application/json'}, body: JSON.stringify({name: 'csrf-less'})})).status""")
    assert status == 403
    shot(page, "12-overview-after-csrf-refusal")


def test_logout(page):
    sign_in(page)
    page.get_by_role("button", name="Log out").click()
    page.get_by_text("Signed out.").wait_for()
    assert page.evaluate("async () => (await fetch('/admin/api/keys')).status") == 401
