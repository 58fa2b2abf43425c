"""Proof of work in the real browser (security.md item 5): after the address's first request
the reset form carries a challenge that portal/static/pow.js solves with Web Crypto before
the form is sent (no CAPTCHA service, no CDN, no CSP violation), and the code arrives;
without JavaScript the page says plainly what to do and nothing is sent."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS
from tests.integration.directory.helpers import FLAVORS, Directory, _admin, connector
from tests.integration.portal.test_selfservice import code_mails, wait_for_code
from tests.portal_support import PortalServer

pytestmark = pytest.mark.browser


@pytest.fixture
def pow_portal(browser_portal: PortalServer, tmp_path: Path) -> Iterator[PortalServer]:
    server = PortalServer.start(tmp_path / "pow-portal", reset_pow_after=1, reset_pow_bits=14)
    yield server
    server.stop()


@pytest.fixture
def users(pow_portal: PortalServer) -> Iterator[Directory]:
    admin, server = _admin("openldap")
    d = Directory("openldap", "corp", connector("corp"), admin, server, FLAVORS["openldap"][1], "uid")
    yield d
    d.cleanup()
    admin.unbind()


def _context(browser: Any, server: PortalServer, *, js: bool = True) -> Any:
    addr = f"10.77.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"
    return browser.new_context(
        base_url=server.base_url,
        locale="en-US",
        java_script_enabled=js,
        extra_http_headers={"X-Forwarded-For": addr},  # 127.0.0.1 is a trusted proxy in the test portal
    )


def test_the_browser_solves_the_puzzle_and_the_code_arrives(
    browser: Any, pow_portal: PortalServer, users: Directory, check_axe: Any
) -> None:
    user, _ = users.create_user()
    context = _context(browser, pow_portal)
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")  # favicon
            else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto("/reset")
        assert page.locator("#pow-form").count() == 0  # the first request of this address: no puzzle
        page.fill("#login", user)
        page.get_by_role("button", name="Send me a code").click()
        expect(page.get_by_text("a code is on its way")).to_be_visible()
        wait_for_code(user)
        # the second: the form carries a challenge, pow.js solves it, the request goes through
        page.goto("/reset")
        expect(page.locator("#pow-form")).to_have_count(1)
        page.fill("#login", user)
        page.get_by_role("button", name="Send me a code").click()  # waits for the check if it is not done
        expect(page.get_by_text("a code is on its way")).to_be_visible(timeout=60_000)
        wait_for_code(user, count=2, wait=20)
        # the check ran in the page: only this portal was asked, nothing else
        assert all(u.startswith(pow_portal.base_url) for u in requests), requests
        page.goto("/reset")
        expect(page.locator("#pow-status")).to_contain_text("Check done", timeout=60_000)
        check_axe(page, "reset request with the puzzle")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "reset-request-puzzle-en.png"), full_page=True)
        assert problems == [], problems
    finally:
        context.close()


def test_without_javascript_the_page_says_what_to_do_and_sends_nothing(
    browser: Any, pow_portal: PortalServer, users: Directory
) -> None:
    user, _ = users.create_user()
    context = _context(browser, pow_portal, js=False)
    page = context.new_page()
    try:
        for _ in range(2):
            page.goto("/reset")
            page.fill("#login", user)
            page.get_by_role("button", name="Send me a code").click()
        # the second request had no solution: the form again, with the plain fallback text
        expect(page.locator("#pow-noscript")).to_be_visible()
        expect(page.locator("#pow-noscript")).to_contain_text("Turn JavaScript on")
        expect(page.locator("#pow-noscript")).to_contain_text("contact the service desk")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "reset-request-no-javascript-en.png"), full_page=True)
        wait_for_code(user)
        assert len(code_mails(user, wait=2.0)) == 1, "only the first request sent a code"
    finally:
        context.close()
