"""The "Change my password" form asks for the new password twice and shows the rules as the
person types, as the reset-code form does (a tester's find: one typo in the only new-password
field became a password nobody knew, and the account needed a reset to get back in).

The server checks again: a form whose two new passwords differ, or that lacks the second, is
refused before anything runs (no ticket, the directory unchanged), in the person's language.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.integration.portal.test_form_utf8 import _address, _binds, _tickets_of
from tests.integration.portal.test_selfservice import good_password
from tests.portal_support import PortalServer, SignedIn, csrf_from, sign_in

pytestmark = [pytest.mark.integration]

MISMATCH = "The two new passwords are not the same. Type the same password twice."
MISSING = "Type the new password twice."


def _post(person: SignedIn, fields: dict[str, str], lang: str = "en") -> Any:
    page = person.get("/fix/password-change")
    assert page.status_code == 200, page.text[:300]
    return person.post(
        "/fix/password-change",
        data={"csrf_token": csrf_from(page.text), **fields},
        headers={"Accept-Language": lang},
        follow_redirects=False,
    )


def test_the_change_form_asks_twice_and_shows_the_rules(portal: PortalServer, ldap_users: Any) -> None:
    user, pw = ldap_users.create_user()
    person = sign_in(portal, user, pw, address=_address())
    for path in ("/fix/password-change", "/"):
        page = person.get(path)
        assert page.status_code == 200
        html = page.text
        assert 'id="password-change-new_password-again" name="new_password_again" type="password"' in html, path
        assert 'for="password-change-new_password-again">New password again<' in html
        rules = re.search(
            r'class="hint password-rules" id="password-change-new_password-rules" data-min-length="(\d+)"', html
        )
        assert rules and int(rules.group(1)) >= 8, path
        assert f"is at least {rules.group(1)} characters long" in html and 'data-rule="same"' in html
        assert 'aria-describedby="password-change-new_password-rules"' in html
        assert '<script src="/static/password-policy.js" defer></script>' in html
        # the current password is asked once, as before
        assert html.count('name="old_password"') == 1 and 'autocomplete="current-password"' in html
    dutch = person.get("/fix/password-change", headers={"Accept-Language": "nl"}).text
    assert "Nieuw wachtwoord nogmaals" in dutch and "is twee keer hetzelfde getypt" in dutch
    # the API catalogue says so too (a client building its own form)
    entry = next(e for e in person.get("/api/v1/catalogue").json() if e["name"] == "password-change")
    confirm = {f["name"]: f["confirm"] for f in entry["fields"]}
    assert confirm == {"old_password": False, "new_password": True}
    person.client.close()


def test_two_different_new_passwords_change_nothing(portal: PortalServer, ldap_users: Any) -> None:
    user, old = ldap_users.create_user()
    person = sign_in(portal, user, old, address=_address())
    new = good_password()
    cases = [
        ({"old_password": old, "new_password": new, "new_password_again": new + "x"}, "en", MISMATCH),
        ({"old_password": old, "new_password": new, "new_password_again": new.upper()}, "en", MISMATCH),
        ({"old_password": old, "new_password": new, "new_password_again": " " + new}, "en", MISMATCH),
        ({"old_password": old, "new_password": new}, "en", MISSING),
        ({"old_password": old, "new_password": new, "new_password_again": ""}, "en", MISSING),
        (
            {"old_password": old, "new_password": new, "new_password_again": new + "x"},
            "nl",
            "De twee nieuwe wachtwoorden zijn niet gelijk. Typ twee keer hetzelfde wachtwoord.",
        ),
        ({"old_password": old, "new_password": new}, "nl", "Typ het nieuwe wachtwoord twee keer."),
    ]
    for fields, lang, message in cases:
        r = _post(person, fields, lang)
        assert r.status_code == 422, (fields.keys(), r.status_code, r.headers.get("location"))
        assert message in r.text, (lang, message)
        assert new not in r.text and old not in r.text  # no password is sent back to the page
        assert 'id="password-change-new_password"' in r.text  # the form again, to correct
    assert _tickets_of(portal, user) == 0  # nothing ran
    assert _binds(ldap_users, user, old) and not _binds(ldap_users, user, new)
    # the same password twice: changed
    done = _post(person, {"old_password": old, "new_password": new, "new_password_again": new})
    assert done.status_code == 303 and done.headers["location"].startswith("/signin?changed=true"), done.headers
    assert _binds(ldap_users, user, new) and not _binds(ldap_users, user, old)
    person.client.close()


def test_the_api_checks_a_second_typing_when_one_is_sent(portal: PortalServer, ldap_users: Any) -> None:
    """The API takes the new password once; a client that asks twice (the catalogue's
    ``confirm``) sends ``new_password_again`` and gets the form's check, never "unknown parameter"."""
    user, old = ldap_users.create_user()
    person = sign_in(portal, user, old, address=_address())
    new = good_password()

    def run(params: dict[str, str], lang: str = "en") -> Any:
        return person.post(
            "/api/v1/runs",
            json={"runbook": "password-change", "params": {"old_password": old, **params}},
            headers={"X-CSRF-Token": person.csrf, "Accept-Language": lang},
        )

    for lang, message in (("en", MISMATCH), ("nl", "De twee nieuwe wachtwoorden zijn niet gelijk.")):
        r = run({"new_password": new, "new_password_again": new + "x"}, lang)
        assert r.status_code == 422 and message in r.json()["error"]["message"], r.text
        assert new not in r.text
    assert _tickets_of(portal, user) == 0 and _binds(ldap_users, user, old)
    r = run({"new_password": new, "new_password_again": new})
    assert r.status_code == 201 and r.json()["state"] == "resolved", r.text
    assert _binds(ldap_users, user, new)
