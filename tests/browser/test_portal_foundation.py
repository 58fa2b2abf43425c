"""The portal's foundation in a real browser: sign-in by keyboard, the language switch
remembered, axe on the sign-in and home pages in English and Dutch, screenshots."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_signin_and_home_pass_axe_in_both_languages(
    page: Any, check_axe: Any, screenshot: Any, browser_sign_in: Any, lang: str
) -> None:
    page.goto("/signin")
    if lang == "nl":
        page.get_by_role("button", name="Nederlands").click()
        page.wait_for_url("**/signin")
    assert page.locator("html").get_attribute("lang") == lang
    heading = {"en": "Sign in", "nl": "Aanmelden"}[lang]
    assert page.get_by_role("heading", level=1).inner_text() == heading
    check_axe(page, f"signin-{lang}")
    screenshot(page, f"signin-{lang}")
    # a refused sign-in shows the message as an alert, also accessible
    page.locator("#username").fill("nobody")
    page.locator("#password").fill("wrong")
    page.locator("#password").press("Enter")
    page.wait_for_load_state()
    alert = page.get_by_role("alert")
    assert alert.inner_text().strip() in (
        "The user name or password is not correct.",
        "De gebruikersnaam of het wachtwoord klopt niet.",
    )
    check_axe(page, f"signin-refused-{lang}")
    browser_sign_in(page, "agent")
    assert page.locator("html").get_attribute("lang") == lang  # the choice is remembered after sign-in
    h1 = {"en": "What's wrong?", "nl": "Wat is er aan de hand?"}[lang]
    assert page.get_by_role("heading", level=1).inner_text() == h1
    check_axe(page, f"home-{lang}")
    screenshot(page, f"home-{lang}")
    page.goto("/me")
    check_axe(page, f"me-{lang}")
    screenshot(page, f"me-{lang}")


def test_keyboard_only_sign_in_and_skip_link(page: Any, browser_sign_in: Any) -> None:
    page.goto("/signin")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused.strip() == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    browser_sign_in(page, "employee")
    assert page.get_by_role("heading", level=1).inner_text() == "What's wrong?"
    # sign out by keyboard: the button is reachable and works
    page.get_by_role("button", name="Sign out").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/signin")
    page.goto("/")
    assert "/signin" in page.url


def test_session_cookie_is_http_only_and_not_readable_by_script(page: Any, browser_sign_in: Any) -> None:
    browser_sign_in(page, "employee")
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = next(c for name, c in cookies.items() if name.endswith("fl_session"))
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert "fl_session" not in page.evaluate("document.cookie")


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_tokens_docs_and_error_pages_pass_axe(
    page: Any, check_axe: Any, screenshot: Any, browser_sign_in: Any, lang: str
) -> None:
    browser_sign_in(page, "employee")
    if lang == "nl":
        page.get_by_role("button", name="Nederlands").click()
        page.wait_for_load_state()
    page.goto("/me/tokens")
    page.locator("#label").fill("browser test")
    with page.expect_navigation():
        page.locator("#label").press("Enter")
    assert page.locator("#new-token").input_value().startswith("fl_")
    check_axe(page, f"tokens-{lang}")
    screenshot(page, f"tokens-{lang}")
    page.goto("/docs")
    check_axe(page, f"docs-{lang}")
    page.goto("/no-such-page")
    assert page.locator("html").get_attribute("lang") == lang
    check_axe(page, f"error-404-{lang}")
    screenshot(page, f"error-404-{lang}")
