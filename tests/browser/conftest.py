"""Browser tests: Playwright (sync API) driving Debian's Chromium against the real portal.

* ``browser_portal`` — one portal (uvicorn subprocess, isolated data) over the lab slapd + SMTP sink.
* ``page`` — a fresh browser context and page (``base_url`` = the portal). Console errors
  and CSP violations are collected in ``page.problems`` and fail the test at teardown.
* ``check_axe(page, name)`` — axe-core (shipped by axe-playwright-python): no serious or
  critical violation, else the test fails listing them.
* ``screenshot(page, name)`` — a full-page PNG in ``var/screenshots/`` (git-ignored) for reviewers.
* ``browser_sign_in(page, role)`` — sign in through the form, by keyboard.

Chromium comes from apt (``scripts/test.sh``): never ``playwright install``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import start_lab
from tests.portal_support import DEMO, REPO, PortalServer, demo_password

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "var" / "screenshots"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalServer]:
    start_lab("slapd", "smtp")
    server = PortalServer.start(tmp_path_factory.mktemp("browser-portal"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install chromium (scripts/test.sh does this)")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
    yield b
    b.close()
    pw.stop()


@pytest.fixture
def page(browser: Any, browser_portal: PortalServer) -> Iterator[Any]:
    context = browser.new_context(
        base_url=browser_portal.base_url, locale="en-US", viewport={"width": 1200, "height": 900}
    )
    pg = context.new_page()
    pg.problems = []

    def on_console(msg: Any) -> None:
        # CSP violations and script errors; a 401/404 answer's "Failed to load resource" is not one
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            pg.problems.append(msg.text)

    pg.on("console", on_console)
    pg.on("pageerror", lambda exc: pg.problems.append(str(exc)))
    yield pg
    problems = list(pg.problems)
    context.close()
    assert problems == [], f"browser console errors (CSP violations, script errors): {problems}"


def _axe(page: Any, name: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    lines = [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:5]}" for v in bad]
    assert not bad, f"axe found serious/critical problems on {name}:\n" + "\n".join(lines)


@pytest.fixture
def check_axe() -> Callable[[Any, str], None]:
    return _axe


def _screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    return _screenshot


def sign_in_with_keyboard(page: Any, role_or_login: str, password: str | None = None) -> None:
    """Sign in through the form using the keyboard only (fields reached with Tab)."""
    login = DEMO.get(role_or_login, role_or_login)
    page.goto("/signin")
    page.locator("#username").focus()
    page.keyboard.type(login)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(password if password is not None else demo_password(login))
    with page.expect_navigation():
        page.keyboard.press("Enter")


@pytest.fixture
def browser_sign_in() -> Callable[..., None]:
    return sign_in_with_keyboard
