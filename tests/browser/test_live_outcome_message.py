"""A ticket followed live (server-sent events) ends showing the same outcome text as the
page does after a reload: for a resolved fix, its resolution note ("The queue of ... was
already empty"). The script used to fill the text in only for escalated and closed tickets,
so a fix that resolved while the page was open showed "Fixed" without saying what was done."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.integration.directory.helpers import FLAVORS, Directory, _admin, connector

pytestmark = pytest.mark.browser


@pytest.fixture
def users(browser_portal: Any) -> Iterator[Directory]:
    admin, server = _admin("openldap")
    d = Directory("openldap", "corp", connector("corp"), admin, server, FLAVORS["openldap"][1], "uid")
    yield d
    d.cleanup()
    admin.unbind()


def test_a_fix_that_resolves_live_shows_its_resolution_note(page: Any, users: Directory, browser_sign_in: Any) -> None:
    from tests.integration.conftest import start_lab

    start_lab("sshd", "cups")
    user, pw = users.create_user()
    browser_sign_in(page, user, pw)
    page.goto("/?q=print")
    page.locator(".fix-list summary").first.click()
    page.locator(".fix-list select").first.select_option("office-1")
    with page.expect_navigation():
        page.locator(".fix-list form button[type=submit]").first.click()
    assert "/me/tickets/FL-" in page.url
    live = page.evaluate("document.getElementById('outcome').getAttribute('data-done')") != "true"
    expect(page.locator("#outcome-label")).to_have_text("Fixed", timeout=60000)
    shown_live = page.locator("#outcome-message").inner_text().strip()
    page.reload()
    after_reload = page.locator("#outcome-message").inner_text().strip()
    assert "Office printer 1" in after_reload
    if live:  # the run finished while the page followed it: the live text is the reloaded one
        assert shown_live == after_reload
