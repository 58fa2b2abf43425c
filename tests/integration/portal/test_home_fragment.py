"""The home page's list of fixes is rendered once per roles, language and search and reused
(portal.rendering.fragment, issue 8 benchmark). What must stay per request and per person:
the CSRF token of the session in every form, a fresh one-time form token in every form of
every page, the person's language, and a runbook that changed shows at once.

Real portal (uvicorn subprocess) over the lab's slapd; see tests/portal_support.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.portal_support import SignedIn

FORM_TOKEN = re.compile(r'name="form_token" value="([^"]*)"')
CSRF_IN_FORM = re.compile(
    r'<form method="post" action="/fix/[^"]+"[^>]*>\s*<input type="hidden" name="csrf_token" value="([^"]*)"'
)


def test_each_page_and_form_gets_its_own_tokens_and_the_sessions_csrf(signed_in: Callable[..., SignedIn]) -> None:
    alice = signed_in("employee")
    first, second = alice.get("/"), alice.get("/")
    tokens_first, tokens_second = FORM_TOKEN.findall(first.text), FORM_TOKEN.findall(second.text)
    assert len(tokens_first) >= 3 and len(tokens_first) == len(tokens_second)
    every = tokens_first + tokens_second
    assert len(set(every)) == len(every)  # never the same form token twice, across forms and pages
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", t) for t in every)  # no marker left behind
    csrf = CSRF_IN_FORM.findall(first.text)
    assert csrf and set(csrf) == {alice.csrf}

    # another person with the same roles gets the cached list with their own CSRF token
    other = signed_in("employee")
    assert other.csrf != alice.csrf
    theirs = other.get("/")
    assert set(CSRF_IN_FORM.findall(theirs.text)) == {other.csrf}
    assert alice.csrf not in theirs.text

    # the cached form token is usable: the form runs (and the same token again answers with that ticket)
    token = FORM_TOKEN.findall(alice.get("/").text)[0]
    ran = alice.post(
        "/fix/account-status", data={"csrf_token": alice.csrf, "form_token": token}, follow_redirects=False
    )
    assert ran.status_code == 303 and ran.headers["location"].startswith("/me/tickets/FL-")


def test_language_and_search_are_part_of_the_cached_list(signed_in: Callable[..., SignedIn]) -> None:
    employee = signed_in("employee")
    en = employee.get("/")
    nl = employee.get("/", headers={"Accept-Language": "nl"})
    en_again = employee.get("/")
    assert "Unlock an account" in en.text and "Account ontgrendelen" not in en.text
    assert "Account ontgrendelen" in nl.text and "Unlock an account" not in nl.text
    assert "Start: Unlock an account" in en_again.text
    printer = employee.get("/", params={"q": "printer"})
    assert "Clear a stuck print queue" in printer.text and "Unlock an account" not in printer.text
    assert "Unlock an account" in employee.get("/").text
