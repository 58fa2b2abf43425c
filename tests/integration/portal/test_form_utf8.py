"""A page form that is not UTF-8 is refused before its route runs (``portal.security.form_not_utf8``).

The form parser read a URL-encoded byte that is not UTF-8 (``%E9``: ``é`` from a Latin-1
client) as U+FFFD, so ``/fix/password-change`` set a password holding U+FFFD and answered
"The password of ... was changed": not the password the person typed (``é`` and ``ü`` became
the same character). Multipart parts that are not UTF-8 were read as Latin-1.
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from ldap3 import Connection

from tests.integration.portal.test_selfservice import Anon, good_password, wait_for_code
from tests.portal_support import PortalServer, SignedIn, csrf_from, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

URLENCODED = "application/x-www-form-urlencoded"
REFUSAL = "The form could not be read: it was not sent as UTF-8 text. Nothing was changed."


def _address() -> str:
    return f"198.51.100.{secrets.randbelow(250) + 1}"


def _tickets_of(portal: PortalServer, user: str) -> int:
    return int(portal.query("SELECT COUNT(*) FROM ticket WHERE subject = :u", u=user)[0][0])


def _binds(ldap_users: Any, user: str, password: str) -> bool:
    """A bind with the password's exact UTF-8 bytes (no SASLprep, which refuses U+FFFD)."""
    c = Connection(ldap_users.server, ldap_users.dn(user), password.encode("utf-8"))
    try:
        return bool(c.bind())
    finally:
        c.unbind()


def _final_state(portal: PortalServer, user: str) -> str:
    """The state of *user*'s one ticket once it is final (the page queues the run)."""
    deadline = time.monotonic() + 30
    while True:
        rows = portal.query("SELECT state FROM ticket WHERE subject = :u", u=user)
        if (rows and rows[0][0] not in ("queued", "running", "in_progress")) or time.monotonic() > deadline:
            return str(rows[0][0]) if rows else "none"
        time.sleep(0.1)


def _change_page(person: SignedIn) -> dict[str, str]:
    page = person.get("/fix/password-change")
    assert page.status_code == 200, page.text[:300]
    return {"csrf_token": csrf_from(page.text)}


def test_a_password_change_form_not_in_utf8_changes_nothing(portal: PortalServer, ldap_users: Any) -> None:
    user, old = ldap_users.create_user()
    person = sign_in(portal, user, old, address=_address())
    base = good_password()
    fields = _change_page(person)
    raw = (  # Latin-1 é, typed twice as the form asks
        f"csrf_token={fields['csrf_token']}&old_password={quote(old)}"
        f"&new_password={quote(base)}%E9&new_password_again={quote(base)}%E9"
    )
    r = person.post("/fix/password-change", content=raw.encode(), headers={"Content-Type": URLENCODED})
    assert r.status_code == 422, (r.status_code, r.headers.get("location"))
    assert REFUSAL in r.text
    nl = person.post(
        "/fix/password-change",
        content=raw.encode(),
        headers={"Content-Type": URLENCODED, "Accept-Language": "nl"},
    )
    assert nl.status_code == 422 and "Het formulier kon niet worden gelezen" in nl.text
    # multipart (the CSRF token as a header), a part in Latin-1: read as Latin-1 before, refused now
    boundary = "fl" + secrets.token_hex(8)
    parts = [("csrf_token", fields["csrf_token"].encode()), ("old_password", old.encode())]
    parts.append(("new_password", base.encode() + b"\xe9"))
    parts.append(("new_password_again", base.encode() + b"\xe9"))
    body = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
            for name, value in parts
        )
        + f"--{boundary}--\r\n".encode()
    )
    m = person.post(
        "/fix/password-change",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "X-CSRF-Token": fields["csrf_token"]},
    )
    assert m.status_code == 422 and REFUSAL in m.text, m.status_code
    assert _tickets_of(portal, user) == 0
    for set_by_mistake in (base + "\ufffd", base + "Ã©"):  # two failed binds: below the lab's lockout
        assert not _binds(ldap_users, user, set_by_mistake)
    assert _binds(ldap_users, user, old)  # (and a good bind clears the failures)
    # the same form in UTF-8 is taken as typed
    ok = person.post(
        "/fix/password-change",
        content=raw.replace("%E9", "%C3%A9").encode(),
        headers={"Content-Type": URLENCODED},
    )
    assert ok.status_code == 303, ok.status_code
    assert _final_state(portal, user) == "resolved"
    assert _binds(ldap_users, user, base + "é")
    person.client.close()


def test_a_reset_code_form_not_in_utf8_keeps_the_code(portal: PortalServer, ldap_users: Any) -> None:
    """``é`` in one field and ``ü`` in the other both read as U+FFFD: they "matched"."""
    user, old = ldap_users.create_user()
    a = Anon(portal, _address())
    assert a.request_code(user).status_code == 303
    code = wait_for_code(user)
    base = good_password()
    raw = (
        f"csrf_token={a.csrf}&login={user}&code={code}"
        f"&new_password={quote(base)}%E9&new_password_again={quote(base)}%FC"
    )
    r = a.client.post("/reset/code", content=raw.encode(), headers={"Content-Type": URLENCODED})
    assert r.status_code == 422 and REFUSAL in r.text, (r.status_code, r.text[-500:])
    assert _tickets_of(portal, user) == 0 and _binds(ldap_users, user, old)
    # the code was not tried: it still sets the password, sent as UTF-8
    done = a.confirm(user, code, base + "é")
    assert done.status_code == 303, done.status_code
    assert _binds(ldap_users, user, base + "é")
    a.close()


def test_an_ascii_or_utf8_form_is_unaffected(portal: PortalServer) -> None:
    client = httpx.Client(base_url=portal.base_url, headers={"X-Forwarded-For": _address()})
    with client:
        page = client.get("/signin")
        token = csrf_from(page.text)
        for name, value in page.headers.items():
            if name == "set-cookie" and "fl_pre" in value:
                cookie = value.split(";", 1)[0]
        raw = f"csrf_token={token}&username=nobody-{secrets.token_hex(3)}&password=caf%C3%A9+%E2%82%AC&next=%2F"
        r = client.post("/signin", content=raw.encode(), headers={"Content-Type": URLENCODED, "Cookie": cookie})
        assert r.status_code == 401  # read, checked and refused as any wrong password


def test_a_query_string_not_in_utf8_is_refused_not_searched_as_u_fffd(portal: PortalServer) -> None:
    """``actor=jos%E9`` (Latin-1) searched for ``jos\\ufffd`` and answered with no rows, as if
    José had done nothing; the same on the pages and the export."""
    auditor = sign_in(portal, "auditor", address=_address())
    for path in (
        "/api/v1/audit/events?actor=jos%E9",
        "/api/v1/audit/export?kind=events&format=csv&target=caf%E9",
        "/audit/tickets?on_behalf_of=jos%E9",
    ):
        r = auditor.get(path)
        assert r.status_code == 422, (path, r.status_code)
        assert "its query was not sent as UTF-8 text" in r.text, r.text[:300]
    nl = auditor.get("/api/v1/audit/events?actor=jos%E9", headers={"Accept-Language": "nl"})
    assert nl.status_code == 422 and "Het adres kon niet worden gelezen" in nl.json()["error"]["message"]
    assert auditor.get("/api/v1/audit/events?actor=jos%C3%A9").status_code == 200  # UTF-8: read as typed
    auditor.client.close()


def test_a_csrf_token_with_other_than_ascii_is_refused_not_a_500(portal: PortalServer) -> None:
    """X-CSRF-Token: \\xff... (or csrf_token=%C3%A9 in a form) reached hmac.compare_digest as a
    str with non-ASCII characters: TypeError, 500. Now the usual 403 csrf_failed."""
    employee = sign_in(portal, "employee", address=_address())
    for token in (b"\xff" * 64, "é".encode() * 32):
        r = employee.post("/api/v1/tokens", json={"label": "x"}, headers=[(b"X-CSRF-Token", token)])
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed", (r.status_code, r.text[:200])
    form = employee.post("/me/tokens", content=b"csrf_token=%C3%A9&label=x", headers={"Content-Type": URLENCODED})
    assert form.status_code == 403, form.status_code
    assert portal.query("SELECT COUNT(*) FROM portal_api_token WHERE label = 'x'") == [(0,)]
    employee.client.close()
