"""The employee's side in a real browser (Debian's Chromium) against the real portal, slapd and SMTP sink:
a forgotten password reset end to end (code read from the sink) then a sign-in with the new
password; a locked account unlocked with a code; the home catalogue, a run and its ticket;
axe on every page in English and Dutch; screenshots in var/screenshots/."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.integration.directory.helpers import FLAVORS, Directory, _admin, connector
from tests.integration.portal.test_selfservice import wait_for_code

pytestmark = pytest.mark.browser


@pytest.fixture
def users(browser_portal: Any) -> Iterator[Directory]:
    admin, server = _admin("openldap")
    d = Directory("openldap", "corp", connector("corp"), admin, server, FLAVORS["openldap"][1], "uid")
    yield d
    d.cleanup()
    admin.unbind()


def _nl(page: Any) -> None:
    page.get_by_role("button", name="Nederlands").click()
    page.wait_for_load_state()


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_forgotten_password_end_to_end_then_sign_in(
    page: Any, users: Directory, check_axe: Any, screenshot: Any, browser_sign_in: Any, lang: str
) -> None:
    user, old = users.create_user()
    page.goto("/signin")
    if lang == "nl":
        _nl(page)
    page.get_by_role("link", name={"en": "Forgot your password?", "nl": "Wachtwoord vergeten?"}[lang]).click()
    page.wait_for_url("**/reset")
    check_axe(page, f"reset-request-{lang}")
    screenshot(page, f"reset-request-{lang}")
    page.get_by_label({"en": "User name", "nl": "Gebruikersnaam"}[lang]).fill(user)
    with page.expect_navigation():
        page.get_by_role("button", name={"en": "Send me a code", "nl": "Stuur mij een code"}[lang]).click()
    assert page.get_by_role("status").first.is_visible()
    code = wait_for_code(user)
    page.locator("#login").fill(user)
    page.locator("#code").fill(code)
    new = f"Zebra lamp {secrets.token_hex(3)} koffie 7"  # a digit whatever the draw
    # the rules are shown as the user types (static JS; no request per keystroke)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.locator("#new_password").type("short")
    length_rule = page.locator('[data-rule="length"] .rule-state')
    assert length_rule.inner_text() == {"en": "(not yet)", "nl": "(nog niet)"}[lang]
    page.locator("#new_password").fill(new)
    page.locator("#new_password").dispatch_event("input")
    assert length_rule.inner_text() == {"en": "(done)", "nl": "(klaar)"}[lang]
    page.locator("#new_password_again").fill(new)
    page.locator("#new_password_again").dispatch_event("input")
    assert page.locator('[data-rule="same"] .rule-state').inner_text() == {"en": "(done)", "nl": "(klaar)"}[lang]
    assert requests == [], "typing sent nothing to the server"
    check_axe(page, f"reset-code-{lang}")
    screenshot(page, f"reset-code-{lang}")
    with page.expect_navigation():
        page.get_by_role(
            "button", name={"en": "Set my new password", "nl": "Mijn nieuwe wachtwoord instellen"}[lang]
        ).click()
    assert page.get_by_role("heading", level=1).inner_text() == {"en": "Fixed", "nl": "Opgelost"}[lang]
    check_axe(page, f"reset-done-{lang}")
    screenshot(page, f"reset-done-{lang}")
    # POST/redirect/GET: the outcome has its own address; a reload shows it again, sends nothing
    assert page.url.endswith("/reset/done") and code not in page.url and new not in page.content()
    number = page.locator("strong").first.inner_text()
    assert number.startswith("FL-")
    page.reload()
    assert page.get_by_role("heading", level=1).inner_text() == {"en": "Fixed", "nl": "Opgelost"}[lang]
    assert page.locator("strong").first.inner_text() == number
    assert "fl_session" not in " ".join(c["name"] for c in page.context.cookies()), "no auto-login"
    assert users.bind_ok(user, new) and not users.bind_ok(user, old)
    browser_sign_in(page, user, new)
    assert (
        page.get_by_role("heading", level=1).inner_text()
        == {"en": "What's wrong?", "nl": "Wat is er aan de hand?"}[lang]
    )


def test_locked_employee_unlocks_their_account(
    page: Any, users: Directory, check_axe: Any, screenshot: Any, browser_sign_in: Any
) -> None:
    user, pw = users.create_user()
    users.lock(user)
    page.goto("/signin")
    page.get_by_role("link", name="Locked out?").click()
    page.wait_for_url("**/unlock")
    check_axe(page, "unlock-request-en")
    page.get_by_label("User name").fill(user)
    with page.expect_navigation():
        page.get_by_role("button", name="Send me a code").click()
    code = wait_for_code(user)
    page.locator("#login").fill(user)
    page.locator("#code").fill(code)
    check_axe(page, "unlock-code-en")
    screenshot(page, "unlock-code-en")
    with page.expect_navigation():
        page.get_by_role("button", name="Unlock my account").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Fixed"
    assert "can be used again" in page.get_by_role("status").inner_text()
    screenshot(page, "unlock-done-en")
    assert page.url.endswith("/unlock/done")
    page.reload()
    assert page.get_by_role("heading", level=1).inner_text() == "Fixed"
    assert users.conn.run("account_status", {"user": user}, timeout=10)["locked"] is False
    browser_sign_in(page, user, pw)
    assert page.get_by_role("heading", level=1).inner_text() == "What's wrong?"


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_home_catalogue_run_and_my_tickets(
    page: Any, users: Directory, check_axe: Any, screenshot: Any, browser_sign_in: Any, lang: str
) -> None:
    user, pw = users.create_user()
    page.goto("/signin")
    if lang == "nl":
        _nl(page)
    browser_sign_in(page, user, pw)
    check_axe(page, f"home-catalogue-{lang}")
    screenshot(page, f"home-catalogue-{lang}")
    search = page.get_by_label({"en": "Search the fixes", "nl": "Zoek in de oplossingen"}[lang])
    search.fill({"en": "check an account", "nl": "controleren"}[lang])
    with page.expect_navigation():
        search.press("Enter")
    headings = page.locator(".fix-list h2").all_inner_texts()
    assert headings == [{"en": "Check an account", "nl": "Account controleren"}[lang]]
    check_axe(page, f"home-search-{lang}")
    page.locator(".fix-list summary").first.click()
    with page.expect_navigation():
        page.locator(".fix-list form button[type=submit]").first.click()
    assert "/me/tickets/FL-" in page.url
    # while it runs the page follows it (server-sent events); the outcome replaces "Working on it"
    # (a check changes nothing: "Done", not "Fixed")
    expect(page.locator("#outcome-label")).to_have_text({"en": "Done", "nl": "Klaar"}[lang], timeout=30000)
    assert page.locator("#steps li").count() >= 1
    check_axe(page, f"ticket-{lang}")
    screenshot(page, f"ticket-{lang}")
    page.goto("/me/tickets")
    assert page.locator("table.tickets tbody tr").count() == 1
    check_axe(page, f"my-tickets-{lang}")
    screenshot(page, f"my-tickets-{lang}")


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_change_password_form_shows_the_rules_and_asks_twice(
    page: Any, users: Directory, check_axe: Any, screenshot: Any, browser_sign_in: Any, lang: str
) -> None:
    """The change form marks the rules as the person types (nothing sent per keystroke), on
    its own page and in the home page's list; two different new passwords change nothing."""
    user, old = users.create_user()
    page.goto("/signin")
    if lang == "nl":
        _nl(page)
    browser_sign_in(page, user, old)
    done, todo = {"en": ("(done)", "(not yet)"), "nl": ("(klaar)", "(nog niet)")}[lang]
    new = f"Zebra lamp {secrets.token_hex(3)} koffie 7"
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    for path in ("/", "/fix/password-change"):
        page.goto(path)
        page.wait_for_load_state("networkidle")  # the page and its favicon, before any typing
        requests.clear()
        form = page.locator('form[action="/fix/password-change"]')
        if path == "/":
            page.locator("#fix-password-change summary").click()
        length_rule = form.locator('[data-rule="length"] .rule-state')
        same_rule = form.locator('[data-rule="same"] .rule-state')
        form.locator("[data-new-password]").type("short")
        assert (length_rule.inner_text(), same_rule.inner_text()) == (todo, todo)
        form.locator("[data-new-password]").fill(new)
        form.locator("[data-new-password]").dispatch_event("input")
        assert length_rule.inner_text() == done
        form.locator("[data-new-password-again]").fill(new + "!")
        form.locator("[data-new-password-again]").dispatch_event("input")
        assert same_rule.inner_text() == todo
        form.locator("[data-new-password-again]").fill(new)
        form.locator("[data-new-password-again]").dispatch_event("input")
        assert same_rule.inner_text() == done
        assert requests == [], "typing sent nothing to the server"
    check_axe(page, f"change-password-{lang}")
    screenshot(page, f"change-password-{lang}")
    # typed differently twice: refused on submit by the server too, nothing changed
    form = page.locator('form[action="/fix/password-change"]')
    form.get_by_label({"en": "Current password", "nl": "Huidig wachtwoord"}[lang]).fill(old)
    form.locator("[data-new-password-again]").fill(new + "!")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert page.get_by_role("alert").inner_text().startswith(
        {"en": "The two new passwords are not the same", "nl": "De twee nieuwe wachtwoorden zijn niet gelijk"}[lang]
    )
    check_axe(page, f"change-password-refused-{lang}")
    assert users.bind_ok(user, old) and not users.bind_ok(user, new)


def test_ticket_page_follows_a_running_fix_live(
    page: Any, users: Directory, check_axe: Any, screenshot: Any, browser_sign_in: Any
) -> None:
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
    page.evaluate("window.__sameDocument = true")
    # "Fixed" when jobs were cancelled, else the queue was already empty
    expect(page.locator("#outcome-label")).to_have_text(
        re.compile(r"^(Fixed|Done: nothing needed changing)$"), timeout=60000
    )
    # no reload happened: the script removed the meta refresh and the steps and outcome arrived
    # on this page by server-sent events (or the run had already finished when it was shown)
    assert page.evaluate("window.__sameDocument === true")
    assert page.locator("#steps li").count() >= 2
    assert page.locator('meta[http-equiv="refresh"]').count() == 0
    check_axe(page, "ticket-live-en")
    screenshot(page, "ticket-live-en")
