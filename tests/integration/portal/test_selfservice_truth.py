"""Self-service answers that tell the truth, over HTTP on the real portal, slapd and SMTP sink.

* ``/unlock/done`` said "Your account can be used again ... We sent a confirmation to your
  e-mail address" for an account that was not locked (the ticket: "Account X was not
  locked; nothing was changed.") and no mail went out; ``/reset/done`` claimed the mail the
  same way. The page now shows the ticket's own note in the reader's language and claims a
  mail only when the run sent one.
* A new password the directory refuses when it is written (the current one, one in its
  history) used up the code, and the API answered 200 "closed". Now the code is given back:
  422 with the directory's reason (the page keeps the form), and the same code works with
  another password.
* ``POST /unlock/code`` with a ``new_password`` field unlocked and answered 303 (the field was
  dropped, the password kept). Every self-service form now refuses a field it does not have.
* Code mails were throttled per account *and purpose*: 3 reset + 3 unlock codes an hour
  reached one person. Now one budget per account (security.md item 4).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from ldap3 import MODIFY_DELETE

from tests.integration.directory.helpers import mails_to
from tests.integration.portal.test_selfservice import (
    Anon,
    _normal,
    address,
    anon,
    audit,
    code_mails,
    good_password,
    wait_audit,
    wait_for_code,
)
from tests.portal_support import PortalServer

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

__all__ = ["anon"]  # the fixture, imported for its use here


def _kinds(login: str) -> list[str]:
    return [str(m["X-Firstline-Kind"]) for m in mails_to(f"{login}@example.org", wait=0.2)]


def _tickets(portal: PortalServer, login: str) -> list[tuple[Any, ...]]:
    return portal.query(
        "SELECT state, resolution_code, resolution_note FROM ticket WHERE requester = :r ORDER BY id",
        r=f"{login}@example.org",
    )


def _restored(portal: PortalServer, login: str) -> list[str]:
    rows = audit(portal, "selfservice.code_restored", f"corp:{login}")
    return [str(r[0]) for r in rows]


# -- the outcome page shows what happened ---------------------------------------------------------


def test_unlocking_an_account_that_was_not_locked_says_so_and_claims_no_mail(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    user, password = ldap_users.create_user()
    a = anon()
    a.ask(user, "unlock")
    code = wait_for_code(user)
    page = a.redeem(user, code)
    assert page.status_code == 200 and page.url.path == "/unlock/done", page.text[-500:]
    note = f"Account {user} was not locked; nothing was changed."
    assert _tickets(portal, user) == [("resolved", "solved_by_automation", note)]
    assert note in page.text
    assert "Your account can be used again" not in page.text
    assert "We sent a confirmation" not in page.text
    assert "If you still cannot sign in" in page.text and 'href="/reset"' in page.text
    nl = a.client.get("/unlock/done", headers={"Accept-Language": "nl"})
    assert nl.status_code == 200 and f"Account {user} was niet geblokkeerd; er is niets gewijzigd." in nl.text
    assert "bevestiging" not in nl.text and "weer te gebruiken" not in nl.text
    time.sleep(1.0)
    assert _kinds(user) == ["code_unlock"], "no confirmation mail was sent"
    assert ldap_users.bind_ok(user, password)


def test_unlocking_a_locked_account_says_so_and_claims_the_mail_it_sent(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    user, _ = ldap_users.create_user()
    ldap_users.lock(user)
    a = anon()
    a.ask(user, "unlock")
    page = a.redeem(user, wait_for_code(user))
    assert page.status_code == 200 and page.url.path == "/unlock/done", page.text[-500:]
    assert "Your account can be used again" in page.text and "We sent a confirmation" in page.text
    assert f"Account {user} was locked after failed sign-ins and is unlocked now" in page.text
    assert "If you still cannot sign in" not in page.text
    deadline = time.monotonic() + 15
    while "account_unlock" not in _kinds(user):
        assert time.monotonic() < deadline, "the page claims a mail that never came"
        time.sleep(0.1)


def test_a_reset_for_an_account_whose_mail_address_went_claims_no_mail(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    """The code was mailed; the address was removed before the code was used: the password is
    set, the runbook has nobody to tell, and the page must not say it told anyone."""
    user, old = ldap_users.create_user()
    a = anon()
    a.ask(user)
    code = wait_for_code(user)
    assert ldap_users.admin.modify(ldap_users.dn(user), {"mail": [(MODIFY_DELETE, [])]}), ldap_users.admin.result
    new = good_password()
    page = a.redeem(user, code, new)
    assert page.status_code == 200 and page.url.path == "/reset/done", page.text[-500:]
    assert ldap_users.bind_ok(user, new) and not ldap_users.bind_ok(user, old)
    assert _tickets(portal, user) == [("resolved", "solved_by_automation", f"The password of {user} was reset.")]
    assert "Your new password is set" in page.text and f"The password of {user} was reset." in page.text
    assert "We sent a confirmation" not in page.text
    time.sleep(1.0)
    assert _kinds(user) == ["code_reset"]


# -- a password the directory refuses when written keeps the code ---------------------------------


@pytest.mark.parametrize("channel", ["api", "page"])
def test_a_password_the_directory_refuses_when_written_keeps_the_code(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon], channel: str
) -> None:
    user, old = ldap_users.create_user()
    a = anon()
    headers = {"X-CSRF-Token": a.csrf}

    def ask() -> str:
        sent = len(code_mails(user, wait=0))
        if channel == "api":
            assert a.client.post("/api/v1/reset/request", json={"login": user}, headers=headers).status_code == 202
        else:
            assert a.request_code(user).status_code == 303
        return wait_for_code(user, count=sent + 1)

    def confirm(code: str, password: str, lang: str = "en") -> httpx.Response:
        if channel == "api":
            body = {"login": user, "code": code, "new_password": password}
            return a.client.post("/api/v1/reset/confirm", json=body, headers={**headers, "Accept-Language": lang})
        a.client.headers["Accept-Language"] = lang
        try:
            return a.confirm(user, code, password)
        finally:
            del a.client.headers["Accept-Language"]

    def refused(answer: httpx.Response, text: str) -> None:
        assert answer.status_code == 422, (answer.status_code, answer.text[-500:])
        if channel == "api":
            assert answer.json()["error"]["code"] == "password_refused"
            assert text in answer.json()["error"]["message"]
        else:
            assert text in answer.text and 'id="new_password"' in answer.text, answer.text[-800:]

    code = ask()
    # the current password: the connector refuses it when it writes (same_as_current), en and nl
    refused(confirm(code, old), "The new password is the same as the current one.")
    refused(confirm(code, old, "nl"), "Het nieuwe wachtwoord is gelijk aan het huidige.")
    assert ldap_users.bind_ok(user, old)
    assert _tickets(portal, user)[-1][:2] == ("closed", "requester_action_needed")  # the attempt is on record
    assert _restored(portal, user) == ["same_as_current", "same_as_current"]
    first = good_password()
    done = confirm(code, first)  # the same code, another password
    if channel == "api":
        assert done.status_code == 200 and done.json()["state"] == "resolved", done.text
    else:
        assert done.status_code == 303 and done.headers["location"] == "/reset/done"
    assert ldap_users.bind_ok(user, first)
    assert confirm(code, good_password()).status_code == 400, "a code that changed the password is used"

    # the password before it, still in slapd's history (pwdInHistory: 3): refused by slapd
    code = ask()
    refused(confirm(code, old), "The new password was used recently.")
    assert ldap_users.bind_ok(user, first)
    assert _restored(portal, user)[-1] == "in_history"
    second = good_password()
    assert confirm(code, second).status_code == (200 if channel == "api" else 303)
    assert ldap_users.bind_ok(user, second)
    assert [row[0] for row in _tickets(portal, user)] == ["closed", "closed", "resolved", "closed", "resolved"]


# -- a form field the route does not take is refused, not dropped ---------------------------------


def test_an_unlock_code_form_with_a_new_password_is_refused_not_unlocked(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    user, password = ldap_users.create_user()
    ldap_users.lock(user)
    a = anon()
    a.ask(user, "unlock")
    code = wait_for_code(user)
    new = good_password()
    for extra in ({"new_password": new}, {"new_password": new, "new_password_again": new}):
        r = a.post("/unlock/code", login=user, code=code, **extra)
        assert r.status_code == 422, (r.status_code, r.headers.get("location"))
        assert "An unlock code only unlocks the account: it does not set a password." in r.text
    nl = a.client.post(
        "/unlock/code",
        data={"csrf_token": a.csrf, "login": user, "code": code, "new_password": new},
        headers={"Accept-Language": "nl"},
    )
    assert nl.status_code == 422 and "Een ontgrendelcode ontgrendelt alleen het account" in nl.text
    assert _tickets(portal, user) == []
    assert ldap_users.conn.run("account_status", {"user": user}, timeout=10)["locked"] is True
    assert new.encode() not in portal.stored_bytes()
    # the code was not looked at: it unlocks, with the password the person has
    done = a.confirm(user, code)
    assert done.status_code == 303 and done.headers["location"] == "/unlock/done"
    assert ldap_users.bind_ok(user, password) and not ldap_users.bind_ok(user, new)


def test_every_self_service_form_refuses_a_field_it_does_not_have(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    user, old = ldap_users.create_user()
    a = anon()
    message = "This form was sent with a field it does not have, so nothing was done."
    # the request forms: a mail address of one's own is not taken, and nothing is sent
    for path in ("/reset", "/unlock"):
        r = a.post(path, login=user, mail="someone@evil.example")
        assert r.status_code == 422 and message in r.text, (path, r.status_code)
    nl = a.client.post(
        "/reset", data={"csrf_token": a.csrf, "login": user, "to": "x"}, headers={"Accept-Language": "nl"}
    )
    assert nl.status_code == 422 and "Dit formulier is verstuurd met een veld dat het niet heeft" in nl.text
    time.sleep(1.0)
    assert code_mails(user, wait=0) == []
    assert audit(portal, "selfservice.code_sent", f"corp:{user}") == []
    # the reset code form: a field for the runbook (must_change) is not taken either
    assert a.request_code(user).status_code == 303
    code = wait_for_code(user)
    new = good_password()
    for extra in ({"must_change": "true"}, {"user": "someone-else"}):
        r = a.post("/reset/code", login=user, code=code, new_password=new, new_password_again=new, **extra)
        assert r.status_code == 422 and message in r.text, (extra, r.status_code)
    r = a.post("/unlock/code", login=user, code=code, directory="corp")
    assert r.status_code == 422 and message in r.text
    assert _tickets(portal, user) == [] and ldap_users.bind_ok(user, old)
    assert a.confirm(user, code, new).status_code == 303  # the code was not tried
    assert ldap_users.bind_ok(user, new)


# -- one budget of code mails per account, whatever the purpose (security.md item 4) --------------


def test_reset_and_unlock_codes_share_one_budget_per_account(
    portal_with: Callable[..., PortalServer], ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    server = portal_with(reset_pow_after=100)
    user, _ = ldap_users.create_user()
    answers = {}
    for i, purpose in enumerate(["reset", "unlock", "reset", "unlock", "reset", "unlock"]):
        a = anon(server, address())  # each from another address: the account's budget is what holds
        answers[(i, purpose)] = _normal(a.request_code(user, purpose), a.csrf)
    for purpose in ("reset", "unlock"):  # a throttled request answers like any other
        same = {repr(v) for (i, p), v in answers.items() if p == purpose}
        assert len(same) == 1, purpose
    assert wait_audit(server, ("selfservice.code_sent",), f"corp:{user}", 3) == 3
    time.sleep(1.0)
    assert len(audit(server, "selfservice.code_sent", f"corp:{user}")) == 3, "the 4th to 6th were never looked up"
    assert sorted(str(m["X-Firstline-Kind"]) for m in code_mails(user, wait=0)) == [
        "code_reset",
        "code_reset",
        "code_unlock",
    ]
    assert [r[0] for r in audit(server, "selfservice.throttled")] == ["account_hour"] * 3
