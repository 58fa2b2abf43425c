"""The agent in a real browser (Debian's Chromium) against the real portal and lab slapd:
looks a locked account up, unlocks it with a reason, resets a password with a reason and
sees the temporary password once (a reload does not show it), then that password signs in
against slapd and must be changed. The agent pages pass axe in English and Dutch;
screenshots go to var/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.portal_support import PortalServer

pytestmark = pytest.mark.browser
NAV = {"en": "Agent desk", "nl": "Agentenbalie"}
UNLOCK = {"en": "Unlock the account", "nl": "Account ontgrendelen"}
RESET = {"en": "Reset to a temporary password", "nl": "Tijdelijk wachtwoord instellen"}
LOOKUP = {"en": "Look up", "nl": "Opzoeken"}


@pytest.fixture
def lab_directory(browser_portal: PortalServer) -> Iterator[Any]:
    from tests.integration.directory.helpers import FLAVORS, Directory, _admin, connector

    admin, server = _admin("openldap")
    d = Directory("openldap", "corp", connector("corp"), admin, server, FLAVORS["openldap"][1], "uid")
    yield d
    for user in d.created:
        admin.delete(d.dn(user))
    admin.unbind()
    d.conn.close()


def sign_in_as_agent(page: Any, browser_sign_in: Any, lang: str) -> None:
    page.goto("/signin")
    if lang == "nl":
        page.get_by_role("button", name="Nederlands").click()
        page.wait_for_url("**/signin")
    browser_sign_in(page, "agent")
    assert page.locator("html").get_attribute("lang") == lang


def look_up(page: Any, user: str, lang: str) -> None:
    page.get_by_role("link", name=NAV[lang], exact=True).first.click()
    page.wait_for_url("**/agent")
    page.locator("#lookup-directory").select_option("corp")
    page.locator("#lookup-user").fill(user)
    with page.expect_navigation():
        page.get_by_role("button", name=LOOKUP[lang], exact=True).click()


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_agent_unlocks_and_resets_with_a_reason(
    page: Any,
    browser_portal: PortalServer,
    browser_sign_in: Any,
    check_axe: Any,
    screenshot: Any,
    lab_directory: Any,
    lang: str,
) -> None:
    user, pw = lab_directory.create_user(given="Browser", sn="Case")
    lab_directory.lock(user)
    sign_in_as_agent(page, browser_sign_in, lang)
    page.get_by_role("link", name=NAV[lang], exact=True).first.click()
    page.wait_for_url("**/agent")
    check_axe(page, f"agent-desk-{lang}")
    screenshot(page, f"agent-desk-{lang}")

    look_up(page, user, lang)
    assert page.locator(".status-bad").first.is_visible()
    check_axe(page, f"agent-account-locked-{lang}")
    screenshot(page, f"agent-account-locked-{lang}")

    # unlock, with a reason typed in the unlock form
    page.locator("#fix-account-unlock-reason").fill(f"Locked out, verified by phone ({lang})")
    with page.expect_navigation():
        page.get_by_role("button", name=UNLOCK[lang], exact=True).click()
    assert "/agent/tickets/FL-" in page.url
    assert f"Locked out, verified by phone ({lang})" in page.content()
    assert lab_directory.bind_ok(user, pw)
    check_axe(page, f"agent-ticket-{lang}")
    screenshot(page, f"agent-ticket-unlocked-{lang}")

    # reset to a temporary password, with a reason; shown once
    look_up(page, user, lang)
    page.locator("#fix-password-reset-reason").fill(f"Forgot the password, verified by phone ({lang})")
    with page.expect_navigation():
        page.get_by_role("button", name=RESET[lang], exact=True).click()
    field = page.locator("#temporary-password")
    temporary = field.input_value()
    assert temporary
    check_axe(page, f"agent-temporary-password-{lang}")
    screenshot(page, f"agent-temporary-password-{lang}")
    page.reload()
    assert page.locator("#temporary-password").count() == 0
    assert temporary not in page.content()
    assert temporary.encode() not in browser_portal.stored_bytes()

    # the temporary password signs in against slapd, and must be changed
    signed = lab_directory.conn.run("authenticate", {"user": user, "password": temporary}, timeout=10)
    assert signed["must_change"] is True
    assert not lab_directory.bind_ok(user, pw)


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_escalated_queue_and_protected_account_pages_are_accessible(
    page: Any, browser_portal: PortalServer, browser_sign_in: Any, check_axe: Any, screenshot: Any, lang: str
) -> None:
    sign_in_as_agent(page, browser_sign_in, lang)
    page.goto("/agent/escalated")
    check_axe(page, f"agent-escalated-{lang}")
    screenshot(page, f"agent-escalated-{lang}")
    look_up(page, "root-admin", lang)
    assert page.locator("form[action^='/agent/fixes/']").count() == 0
    check_axe(page, f"agent-account-protected-{lang}")
    screenshot(page, f"agent-account-protected-{lang}")
