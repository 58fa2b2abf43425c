"""A one-time code is read as the digits it means (runner.selfservice.normalize_code):
full-width digits ('１２３４５６７８', NFKC) and other scripts' decimal digits (Arabic-Indic,
Devanagari) are the code, and what is then not 8 digits (a letter, a symbol, too few or too
many) is refused with 422 and a sentence, counting no try. Before, each of these was a wrong
try: five burned the code the person had typed correctly in another script.
Real portal, lab slapd and SMTP sink."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.portal.test_selfservice import Anon, anon, wait_for_code
from tests.portal_support import PortalServer

pytestmark = pytest.mark.both_databases
__all__ = ["anon"]  # the fixture, used by name

ARABIC_INDIC = "٠١٢٣٤٥٦٧٨٩"
DEVANAGARI = "०१२३४५६७८९"


def _in(code: str, digits: str) -> str:
    return "".join(digits[int(d)] for d in code)


def _full_width(code: str) -> str:
    return "".join(chr(0xFF10 + int(d)) for d in code)


MALFORMED = ["", "abcdefgh", "1234567", "123456789", "1234５６7x", "12345678!", "½1234567"]


def _tries(server: PortalServer) -> list[tuple[Any, ...]]:
    return server.query("SELECT state, tries FROM selfservice_code ORDER BY id DESC LIMIT 1")


@pytest.mark.parametrize(
    "spell",
    [_full_width, lambda c: _in(c, ARABIC_INDIC), lambda c: _in(c, DEVANAGARI), lambda c: f"{c[:4]}\u3000{c[4:]}"],
    ids=["full-width", "arabic-indic", "devanagari", "ideographic-space"],
)
def test_a_code_typed_in_other_digits_is_the_code(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon], spell: Callable[[str], str]
) -> None:
    user, pw = ldap_users.create_user()
    ldap_users.lock(user)
    a = anon()
    a.request_code(user, "unlock")
    code = wait_for_code(user)
    done = a.redeem(user, spell(code))
    assert done.status_code == 200, done.text
    assert ldap_users.conn.run("account_status", {"user": user}, timeout=10)["locked"] is False
    assert ldap_users.bind_ok(user, pw)


def test_what_is_not_a_code_is_refused_without_spending_a_try(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    user, _pw = ldap_users.create_user()
    ldap_users.lock(user)
    a = anon()
    a.request_code(user, "unlock")
    code = wait_for_code(user)
    headers = {"X-CSRF-Token": a.csrf}
    for typed in MALFORMED:  # more than the 5 tries a code has
        page = a.confirm(user, typed)
        assert page.status_code == 422, (typed, page.status_code, page.text[:300])
        assert "A code is 8 digits; what you typed is not. This did not count as a try" in page.text
        body = {"login": user, "purpose": "unlock", "code": typed or " "}
        api = a.client.post("/api/v1/reset/confirm", json=body, headers=headers)
        assert api.status_code == 422 and api.json()["error"]["code"] == "invalid_input", (typed, api.text)
    nl = a.client.post(
        "/api/v1/reset/confirm",
        json={"login": user, "purpose": "unlock", "code": "abc"},
        headers={**headers, "Accept-Language": "nl"},
    )
    assert nl.status_code == 422 and nl.json()["error"]["message"].startswith("Een code bestaat uit 8 cijfers")
    assert _tries(portal) == [("live", 0)]
    assert a.redeem(user, _full_width(code)).status_code == 200
    assert ldap_users.conn.run("account_status", {"user": user}, timeout=10)["locked"] is False


def test_a_wrong_code_of_8_digits_in_any_script_still_counts_a_try(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    user, _pw = ldap_users.create_user()
    ldap_users.lock(user)
    a = anon()
    a.request_code(user, "unlock")
    code = wait_for_code(user)
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    assert a.confirm(user, _in(wrong, ARABIC_INDIC)).status_code == 400
    assert _tries(portal) == [("live", 1)]
