"""Forgotten password and locked account over HTTP: the real portal, the lab slapd and SMTP sink.

security.md items (test names say which): 1 identical answers, 3 throttle before look-up,
4 per-account / per-address / global limits, 6 address from the directory, 8-9 codes from
secrets stored as HMAC only, 10 single use, 11 expiry, 12 a password change invalidates,
13 tries then burned, 14 links from the public URL only, 15 no-referrer / no-store,
16 GET consumes nothing, 17 no auto-login and sessions ended, 23/43/48 no secret in any
store, 33 self-unlock, 34/39 nothing revealed or changed before the code is proven.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.integration.directory.helpers import MAILDIR, mails_to
from tests.portal_support import PortalServer, cookie_value, csrf_from, set_cookie_values, sign_in, start_anonymous

pytestmark = pytest.mark.both_databases

CODE = re.compile(r"(?:Your code|Uw code): (\d{8})")
LINK = re.compile(r"Enter it at (\S+) within")
PolicyPages = ("/reset", "/unlock", "/reset/code", "/unlock/code")


def address() -> str:
    """A fresh client address per test (X-Forwarded-For; the portal trusts 127.0.0.1)."""
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


# Letters no hex digit, "t" or a folded digit can be (the personal-information rule folds
# 7->t, 3->e, 5->s...: a hex password could hold "7e57" = "test", the fixture's given name).
_SAFE = "hjkmqwxyHJKMQWXY"


def good_password() -> str:
    def part(n: int) -> str:
        return "".join(secrets.choice(_SAFE) for _ in range(n))

    return f"Qx-{part(6)}8{part(6)} Wm-{part(4)}8{part(4)}!"


def code_mails(login: str, wait: float = 10.0) -> list[Any]:
    return [m for m in mails_to(f"{login}@example.org", wait=wait) if str(m["X-Firstline-Kind"]).startswith("code_")]


def wait_for_code(login: str, count: int = 1, wait: float = 15.0) -> str:
    """The newest code mailed to *login* once *count* code mails arrived."""
    deadline = time.monotonic() + wait
    while True:
        found = code_mails(login, wait=0.2)
        if len(found) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(found) >= count, f"expected {count} code mail(s) for {login}, got {len(found)}"
    body = found[-1].get_body(("plain",)).get_content()
    match = CODE.search(body)
    assert match, body
    return match.group(1)


def audit(server: PortalServer, action: str, target: str | None = None) -> list[tuple[Any, ...]]:
    sql = "SELECT reason, target, outcome FROM audit_event WHERE action = :action"
    if target is not None:
        sql += " AND target = :target"
    return server.query(sql + " ORDER BY seq", action=action, target=target)


def unknown_not_sent(server: PortalServer) -> list[tuple[Any, ...]]:
    """The code_not_sent events for names that are no account (target ``corp:?<hmac>``)."""
    return [r for r in audit(server, "selfservice.code_not_sent") if r[0] == "unknown_account"]


def wait_audit(server: PortalServer, actions: tuple[str, ...], target: str, count: int, wait: float = 15.0) -> int:
    deadline = time.monotonic() + wait
    while True:
        n = sum(len(audit(server, a, target)) for a in actions)
        if n >= count or time.monotonic() > deadline:
            return n
        time.sleep(0.1)


class Anon:
    """An anonymous browser: pre-session cookie, CSRF token, its own client address."""

    def __init__(self, server: PortalServer, addr: str | None = None, **headers: str) -> None:
        self.client, self.csrf = start_anonymous(server, addr or address())
        self.client.headers.update(headers)

    def post(self, path: str, **data: str) -> httpx.Response:
        return self.client.post(path, data={"csrf_token": self.csrf, **data})

    def request_code(self, login: str, purpose: str = "reset") -> httpx.Response:
        """The answer to the request itself: 303 to the code form (POST/redirect/GET)."""
        return self.post("/reset" if purpose == "reset" else "/unlock", login=login)

    def follow(self, answer: httpx.Response) -> httpx.Response:
        """The page the 303 leads to, as a browser gets it: with the ``fl_ask`` / ``fl_done``
        cookie (Secure: httpx keeps it for https only, so it is handed over as a browser would)."""
        assert answer.status_code == 303, (answer.status_code, answer.text[:300])
        for name, header in set_cookie_values(answer).items():
            if name.endswith(("fl_ask", "fl_done")):
                self.client.cookies.set(name, cookie_value(header))
        return self.client.get(answer.headers["location"])

    def ask(self, login: str, purpose: str = "reset") -> httpx.Response:
        """Request a code and open the code form it leads to."""
        return self.follow(self.request_code(login, purpose))

    def confirm(self, login: str, code: str, password: str | None = None, again: str | None = None) -> httpx.Response:
        """The answer to the code form's POST itself (303 to the outcome, or the form with an error)."""
        if password is None:
            return self.post("/unlock/code", login=login, code=code)
        return self.post(
            "/reset/code",
            login=login,
            code=code,
            new_password=password,
            new_password_again=password if again is None else again,
        )

    def redeem(self, login: str, code: str, password: str | None = None, again: str | None = None) -> httpx.Response:
        """The page a browser shows after the code form: the outcome page the 303 leads to,
        or the form with its error."""
        answer = self.confirm(login, code, password, again)
        return self.follow(answer) if answer.status_code == 303 else answer

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def anon(portal: PortalServer) -> Iterator[Callable[..., Anon]]:
    made: list[Anon] = []

    def make(server: PortalServer | None = None, addr: str | None = None, **headers: str) -> Anon:
        a = Anon(server or portal, addr, **headers)
        made.append(a)
        return a

    yield make
    for a in made:
        a.close()


def _normal(response: httpx.Response, csrf: str) -> tuple[int, str, dict[str, str], list[str]]:
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "content-length", "set-cookie")}
    cookies = sorted(h.split("=", 1)[0] + ";" + h.split(";", 1)[1] for h in response.headers.get_list("set-cookie"))
    return response.status_code, response.text.replace(csrf, "CSRF"), headers, cookies


# -- item 1, 2 (inline part), 6, 27, 34: the same answer for every kind of account -----------------


def test_request_answers_identically_for_unknown_known_disabled_privileged_locked_no_mail(
    portal_with: Callable[..., PortalServer], ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    server = portal_with(reset_pow_after=100)  # the puzzle has its own test (test_selfservice_pow.py)
    mails_before = set(MAILDIR.glob("*.eml"))  # lab accounts (root-admin, gone) may have mail from earlier runs
    known, _ = ldap_users.create_user()
    locked, _ = ldap_users.create_user()
    ldap_users.lock(locked)
    no_mail, _ = ldap_users.create_user(mail=False)
    disabled, _ = ldap_users.create_user(pwdAccountLockedTime="000001010000Z")
    unknown = f"nobody{secrets.token_hex(4)}"
    logins = {
        "unknown": unknown,
        "known": known,
        "locked": locked,
        "no_mail": no_mail,
        "disabled": disabled,
        "privileged": "root-admin",
        "expired": "gone",
        "not_a_name": "*)(uid=*",
        "foreign_domain": f"{known}@evil.example",
    }
    for purpose in ("reset", "unlock"):
        a = anon(server)
        answers = {kind: _normal(a.request_code(login, purpose), a.csrf) for kind, login in logins.items()}
        first = answers["known"]
        assert first[0] == 303 and first[2]["location"] == f"/{purpose}/code"
        for kind, answer in answers.items():
            assert answer == first, f"{purpose}: the answer for {kind} differs from the one for a known account"
        # a fresh browser each time: the same status, body (modulo CSRF nonce), headers, cookie names and flags
        fresh = []
        for login in (unknown, known, "root-admin"):
            c = httpx.Client(base_url=server.base_url, headers={"X-Forwarded-For": address()})
            page = c.get("/reset")
            token = csrf_from(page.text)
            pre = page.headers.get_list("set-cookie")[0].split(";", 1)[0]
            r = c.post("/reset", data={"csrf_token": token, "login": login}, headers={"Cookie": pre})
            fresh.append(_normal(r, token))
            c.close()
        assert fresh[0] == fresh[1] == fresh[2]
    # the JSON twin: 202 and one body for everyone
    a = anon(server)
    bodies = set()
    for login in logins.values():
        r = a.client.post("/api/v1/reset/request", json={"login": login}, headers={"X-CSRF-Token": a.csrf})
        assert r.status_code == 202, r.text
        bodies.add(r.text)
    assert len(bodies) == 1
    # only the known and the locked account got a code, to the address in the directory
    assert wait_for_code(known) and wait_for_code(locked)
    target = "corp:"
    assert wait_audit(server, ("selfservice.code_sent",), f"{target}{known}", 3) >= 3
    for login, reason in (
        (no_mail, "no_address"),
        (disabled, "disabled"),
        ("root-admin", "privileged"),
        ("gone", "expired"),
    ):
        assert wait_audit(server, ("selfservice.code_not_sent",), f"{target}{login}", 1) >= 1
        reasons = {row[0] for row in audit(server, "selfservice.code_not_sent", f"{target}{login}")}
        assert reasons == {reason}, (login, reasons)
        new_mail = [p.read_bytes() for p in set(MAILDIR.glob("*.eml")) - mails_before]
        assert not [m for m in new_mail if f"To: {login}@example.org".encode() in m], login
    # the unknown name: audited under its keyed pseudonym, never as typed (test_typed_names_below)
    deadline = time.monotonic() + 15
    while not unknown_not_sent(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {r[1][:6] for r in unknown_not_sent(server)} == {"corp:?"}, unknown_not_sent(server)
    assert not [r for r in audit(server, "selfservice.code_not_sent") if unknown in str(r)]
    # item 39: asking changed nothing on the locked account
    assert ldap_users.conn.run("account_status", {"user": locked}, timeout=10)["locked"] is True


def test_reset_pages_are_no_store_and_no_referrer(portal: PortalServer, anon: Callable[..., Anon]) -> None:
    a = anon()
    for path in PolicyPages:
        r = a.client.get(path)
        assert r.status_code == 200
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert "<script>" not in r.text  # no inline script; the policy display is a static file
    r = a.request_code("someone")
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["cache-control"] == "no-store"
    js = a.client.get("/static/password-policy.js")
    assert js.status_code == 200 and "data-min-length" in js.text


# -- POST/redirect/GET: reloading the code form sends nothing again ------------------------------------


def _page(r: httpx.Response, login: str, csrf: str) -> str:
    return r.text.replace(csrf, "CSRF").replace(login, "LOGIN")


@pytest.mark.parametrize("purpose", ["unlock", "reset"])
def test_a_code_request_redirects_to_a_prefilled_form_that_a_reload_does_not_send_again(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon], purpose: str
) -> None:
    user, _ = ldap_users.create_user()
    a = anon()
    answer = a.request_code(user, purpose)
    assert answer.status_code == 303 and answer.headers["location"] == f"/{purpose}/code"
    assert answer.text == "" and user not in answer.headers["location"]
    ask = next(h for n, h in set_cookie_values(answer).items() if n.endswith("fl_ask"))
    assert "HttpOnly" in ask and "SameSite=Lax" in ask and "Max-Age=600" in ask and user not in ask
    page = a.follow(answer)
    assert page.status_code == 200 and "a code is on its way" in page.text
    assert re.search(rf'<input id="login" name="login"[^>]* value="{user}">', page.text), "the name typed, pre-filled"
    code = wait_for_code(user)
    assert code not in answer.headers["location"] and code not in ask and code not in page.text
    # reloading the form (twice) is a GET: no second code, no throttle step, the same page
    for _ in range(2):
        again = a.client.get(f"/{purpose}/code")
        assert again.status_code == 200 and _page(again, user, a.csrf) == _page(page, user, a.csrf)
    time.sleep(1.5)
    assert len(code_mails(user, wait=0)) == 1
    assert wait_audit(portal, ("selfservice.code_sent",), f"corp:{user}", 2, wait=1.0) == 1
    # the other purpose's form and a browser that asked nothing: empty, no "on its way"
    other = a.client.get("/reset/code" if purpose == "unlock" else "/unlock/code")
    assert "a code is on its way" not in other.text and user not in other.text
    fresh = anon().client.get(f"/{purpose}/code")
    assert "a code is on its way" not in fresh.text and 'maxlength="320" value=""' in fresh.text
    # a wrong code keeps the name typed; a redeemed code ends the request (cookie cleared)
    wrong = a.redeem(user, "00000000", None if purpose == "unlock" else good_password())
    assert wrong.status_code == 400 and f'value="{user}"' in wrong.text
    done = a.confirm(user, code, None if purpose == "unlock" else good_password())
    assert done.status_code == 303, done.text[:500]
    cleared = next(h for n, h in set_cookie_values(done).items() if n.endswith("fl_ask"))
    assert "Max-Age=0" in cleared


def test_the_redirect_and_the_form_look_the_same_for_an_account_that_does_not_exist(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    known, _ = ldap_users.create_user()
    unknown = f"nobody{secrets.token_hex(4)}"
    for purpose in ("unlock", "reset"):
        pages, answers = [], []
        for login in (known, unknown, "root-admin"):
            a = anon()
            answer = a.request_code(login, purpose)
            answers.append(_normal(answer, a.csrf))
            page = a.follow(answer)
            assert page.status_code == 200 and f'value="{login}"' in page.text
            pages.append((page.status_code, _page(page, login, a.csrf)))
        assert answers[0] == answers[1] == answers[2]
        assert pages[0] == pages[1] == pages[2]
    wait_for_code(known, count=2)


# -- items 3, 4: throttles, checked before any directory look-up --------------------------------------


def test_account_throttle_holds_before_lookup_for_every_spelling(
    portal_with: Callable[..., PortalServer], ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    server = portal_with()
    user, _ = ldap_users.create_user()
    unknown = f"nobody{secrets.token_hex(4)}"
    spellings = [user, user.upper(), f"{user}@example.org", f"EXAMPLE-ORG\\{user}", f" {user} "]
    answers = []
    for spelling in spellings:  # 5 requests, each from another address: the account limit (3/h) is what holds
        a = anon(server)
        answers.append(_normal(a.request_code(spelling), a.csrf))
    for spelling in [unknown] * 5:
        a = anon(server)
        answers.append(_normal(a.request_code(spelling), a.csrf))
    assert len(set(map(repr, answers))) == 1, "a throttled request must be answered like any other"
    assert wait_audit(server, ("selfservice.code_sent",), f"corp:{user}", 3) == 3
    time.sleep(1.0)
    # exactly 3 look-ups (code_sent / code_not_sent) per account: the 4th and 5th never reached the directory
    assert len(audit(server, "selfservice.code_sent", f"corp:{user}")) == 3
    assert len(code_mails(user, wait=0)) == 3
    assert len(unknown_not_sent(server)) == 3 and len({r[1] for r in unknown_not_sent(server)}) == 1
    throttled = audit(server, "selfservice.throttled")
    assert [r[0] for r in throttled] == ["account_hour"] * 4
    # an unlock code counts against the same budget: 3 code mails an hour per account (item 4)
    a = anon(server)
    assert a.request_code(user, "unlock").status_code == 303
    time.sleep(1.0)
    assert len(audit(server, "selfservice.code_sent", f"corp:{user}")) == 3 and len(code_mails(user, wait=0)) == 3
    assert [r[0] for r in audit(server, "selfservice.throttled")] == ["account_hour"] * 5


def test_address_and_global_limits(
    portal_with: Callable[..., PortalServer], ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    server = portal_with(reset_per_address_hour=2, reset_global_day=3)
    users = [ldap_users.create_user()[0] for _ in range(4)]
    same = address()
    for user in users[:3]:
        anon(server, same).request_code(user)
    assert wait_audit(server, ("selfservice.code_sent",), f"corp:{users[0]}", 1)
    assert wait_audit(server, ("selfservice.code_sent",), f"corp:{users[1]}", 1)
    time.sleep(1.0)
    assert not code_mails(users[2], wait=0), "the third request from one address is over the address limit"
    anon(server).request_code(users[3])  # another address: the 3rd request of the day overall is allowed
    assert wait_audit(server, ("selfservice.code_sent",), f"corp:{users[3]}", 1)
    anon(server).request_code(users[2])  # a 4th overall: over the global daily budget
    time.sleep(1.0)
    assert not code_mails(users[2], wait=0)
    scopes = [r[0] for r in audit(server, "selfservice.throttled")]
    assert scopes == ["address_hour", "global_day"]
    assert "selfservice.alert" in (server.data_dir / "log" / "firstline.log").read_text()


# -- item 14: links only from the configured public URL ------------------------------------------------


def test_forged_host_headers_do_not_change_the_link(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    user, _ = ldap_users.create_user()
    forged = {
        "Host": "evil.example",
        "X-Forwarded-Host": "evil.example",
        "Forwarded": "host=evil.example;proto=https",
        "X-Forwarded-Proto": "https",
        "X-Original-URL": "https://evil.example/reset/code",
    }
    a = anon(**forged)
    assert a.request_code(user).status_code == 303
    wait_for_code(user)
    body = code_mails(user)[-1].get_body(("plain",)).get_content()
    links = set(LINK.findall(body)) | set(re.findall(r"https?://\S+", body))
    assert links == {portal.base_url + "/reset/code"}
    assert "evil" not in body


# -- the whole reset: items 8-10, 16, 17, 23, 43, 48 -----------------------------------------------------


def test_forgotten_password_end_to_end_single_use_no_auto_login_no_secret_stored(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    user, old = ldap_users.create_user()
    session = sign_in(portal, user, old)  # a session from before: it must end with the reset
    a = anon()
    assert a.request_code(user).status_code == 303
    code = wait_for_code(user)
    assert len(code) == 8 and code.isdigit()
    # item 16: opening the code page (as a mail scanner would) changes nothing
    assert a.client.get("/reset/code").status_code == 200
    # one wrong try first (counts, does not burn)
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    assert a.redeem(user, wrong, good_password()).status_code == 400
    new = good_password()
    done = a.redeem(user, f"{code[:4]} {code[4:]}", new)  # typed with a space
    assert done.status_code == 200, done.text
    assert "FL-" in done.text and "Sign in" in done.text
    assert not done.headers.get_list("set-cookie"), "no session is created (no auto-login)"
    assert ldap_users.bind_ok(user, new) and not ldap_users.bind_ok(user, old)
    # item 10: the same code again fails with the generic answer
    again = a.redeem(user, code, good_password())
    assert again.status_code == 400 and "not valid" in again.text
    assert ldap_users.bind_ok(user, new)
    # item 17: the old session is gone
    assert session.get("/", follow_redirects=False).status_code == 303
    # the ticket: on the employee's behalf, channel portal, resolved
    rows = portal.query(
        "SELECT requester, channel, state, runbook FROM ticket WHERE requester = :r", r=f"{user}@example.org"
    )
    assert rows == [(f"{user}@example.org", "portal", "resolved", "password-reset")]
    # a notification (not the code, not the password) went to the directory's address
    kinds = [str(m["X-Firstline-Kind"]) for m in mails_to(f"{user}@example.org")]
    assert kinds.count("password_reset") == 1 and kinds.count("code_reset") == 1
    # items 9, 23, 43, 48: neither the code nor the new password in any store
    stored = portal.stored_bytes()
    for secret in (code, new, wrong):
        assert secret.encode() not in stored
    mails = [p.read_bytes() for p in MAILDIR.glob("*.eml") if f"{user}@example.org".encode() in p.read_bytes()]
    assert mails and not any(new.encode() in m for m in mails)
    with_code = [m for m in mails if code.encode() in m]
    assert len(with_code) == 1 and b"X-Firstline-Kind: code_reset" in with_code[0], "the code is in its own mail only"
    hmacs = portal.query("SELECT code_hmac FROM selfservice_code")
    assert all(len(h) == 64 and h != code for (h,) in hmacs)


def test_api_reset_and_password_refusal_keeps_the_code(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    user, old = ldap_users.create_user(given="Marjolein", sn="Verbeek")
    a = anon()
    policy = a.client.get("/api/v1/reset/policy").json()
    assert policy["min_length"] >= 15
    headers = {"X-CSRF-Token": a.csrf}
    assert a.client.post("/api/v1/reset/request", json={"login": user}, headers=headers).status_code == 202
    code = wait_for_code(user)
    for missing in ({}, {"new_password": None}, {"new_password": ""}):  # a malformed request: 422, the code kept
        r = a.client.post("/api/v1/reset/confirm", json={"login": user, "code": code, **missing}, headers=headers)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input", r.text
        assert "new_password" in r.json()["error"]["message"]
    for weak in ("short-1", f"{user}-and-some-more-text", "Marjolein-is-my-name-2026"):
        r = a.client.post(
            "/api/v1/reset/confirm", json={"login": user, "code": code, "new_password": weak}, headers=headers
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "password_refused"
    assert ldap_users.bind_ok(user, old)
    new = good_password()
    r = a.client.post("/api/v1/reset/confirm", json={"login": user, "code": code, "new_password": new}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "resolved" and r.json()["ticket"].startswith("FL-")
    assert ldap_users.bind_ok(user, new)
    r = a.client.post(
        "/api/v1/reset/confirm", json={"login": user, "code": code, "new_password": good_password()}, headers=headers
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "code_invalid"


def test_a_new_password_with_control_characters_is_refused_before_the_code_is_used(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    """A NUL, tab or line break in the new password cannot be set (the runner refuses it):
    it is refused before the code is redeemed, so the code still works and no request ends
    without a ticket. It burned the code (API and page) and opened no ticket."""
    for channel in ("api", "page"):
        user, old = ldap_users.create_user()
        a = anon()
        headers = {"X-CSRF-Token": a.csrf}
        if channel == "api":
            assert a.client.post("/api/v1/reset/request", json={"login": user}, headers=headers).status_code == 202
        else:
            assert a.request_code(user).status_code == 303
        code = wait_for_code(user)
        for bad in ("Qx-hjkmq8wxyHJ \x00Wm-KMQW8hjk", "Qx-hjkmq8wxyHJ\tWm-KMQW8hjk", "Qx-hjkmq8wxyHJ\r\nWm-KMQW8hjk"):
            if channel == "api":
                body = {"login": user, "code": code, "new_password": bad}
                r = a.client.post("/api/v1/reset/confirm", json=body, headers=headers)
                assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input", r.text
                assert "control character" in r.json()["error"]["message"], r.text
            else:
                r = a.confirm(user, code, bad)
                assert r.status_code == 422 and "control character" in r.text, (r.status_code, r.text[-800:])
        assert portal.query("SELECT COUNT(*) FROM ticket WHERE subject = :u", u=user) == [(0,)]
        assert ldap_users.bind_ok(user, old)
        new = good_password()
        if channel == "api":
            r = a.client.post(
                "/api/v1/reset/confirm", json={"login": user, "code": code, "new_password": new}, headers=headers
            )
            assert r.status_code == 200 and r.json()["state"] == "resolved", r.text
        else:
            assert a.confirm(user, code, new).status_code == 303
        assert ldap_users.bind_ok(user, new)


# -- items 11-13: tries, expiry, invalidation by a password change ---------------------------------------


def test_five_wrong_codes_burn_it(portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]) -> None:
    user, old = ldap_users.create_user()
    a = anon()
    a.request_code(user)
    code = wait_for_code(user)
    for i in range(5):
        wrong = f"{(int(code) + 1 + i) % 10**8:08d}"
        assert a.redeem(user, wrong, good_password()).status_code == 400
    r = a.redeem(user, code, good_password())
    assert r.status_code == 400, "the right code after 5 wrong ones must fail: it is burned"
    assert ldap_users.bind_ok(user, old)
    assert portal.query("SELECT state, tries FROM selfservice_code WHERE state = 'burned' AND tries = 5"), (
        "the try counter is kept server-side, per code"
    )


def test_expired_code_cannot_reset(portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]) -> None:
    user, old = ldap_users.create_user()
    a = anon()
    a.request_code(user)
    code = wait_for_code(user)
    live = portal.query("SELECT id, created_at, expires_at FROM selfservice_code WHERE state = 'live' ORDER BY id")
    newest = live[-1]
    assert newest[2] > newest[1]
    portal.execute(
        "UPDATE selfservice_code SET expires_at = :at WHERE id = :id",
        at="2000-01-01T00:00:00.000000+00:00",
        id=newest[0],
    )
    assert a.redeem(user, code, good_password()).status_code == 400
    assert ldap_users.bind_ok(user, old)


def test_password_change_by_another_path_invalidates_the_code(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    user, _ = ldap_users.create_user()
    a = anon()
    a.request_code(user)
    code = wait_for_code(user)
    time.sleep(1.1)  # pwdChangedTime has whole seconds
    other = good_password()
    ldap_users.set(user, userPassword=other)  # the administrator changes it directly in the directory
    r = a.redeem(user, code, good_password())
    assert r.status_code == 400
    assert ldap_users.bind_ok(user, other)


def test_mismatched_passwords_do_not_use_a_try(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    user, _ = ldap_users.create_user()
    a = anon()
    a.request_code(user)
    code = wait_for_code(user)
    assert a.redeem(user, code, good_password(), again=good_password()).status_code == 422
    assert portal.query("SELECT tries FROM selfservice_code ORDER BY id DESC LIMIT 1") == [(0,)]
    assert a.redeem(user, code, good_password()).status_code == 200


# -- item 33: self-unlock with the same proof ------------------------------------------------------------


def test_locked_employee_unlocks_with_a_code(portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]) -> None:
    user, pw = ldap_users.create_user()
    ldap_users.lock(user)
    a = anon()
    assert a.request_code(user, "unlock").status_code == 303
    body = code_mails(user, wait=15)[-1]
    assert str(body["X-Firstline-Kind"]) == "code_unlock"
    code = wait_for_code(user)
    assert "locked" not in a.client.get("/unlock/code").text.lower().replace("locked out?", "")
    done = a.redeem(user, code)
    assert done.status_code == 200, done.text
    assert ldap_users.conn.run("account_status", {"user": user}, timeout=10)["locked"] is False
    assert ldap_users.bind_ok(user, pw)
    kinds = [str(m["X-Firstline-Kind"]) for m in mails_to(f"{user}@example.org")]
    assert "account_unlock" in kinds
    assert a.redeem(user, code).status_code == 400  # single use


def test_an_unlock_code_with_a_new_password_is_refused_not_the_password_dropped(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    """POST /api/v1/reset/confirm with purpose=unlock and a new_password unlocked the account,
    kept the old password and answered 200 "Fixed": the person believed the new password was
    set. Now 422 before the code is looked at (the code still unlocks), en and nl."""
    user, pw = ldap_users.create_user()
    ldap_users.lock(user)
    a = anon()
    headers = {"X-CSRF-Token": a.csrf}
    body = {"login": user, "purpose": "unlock"}
    assert a.client.post("/api/v1/reset/request", json=body, headers=headers).status_code == 202
    code = wait_for_code(user)
    new = good_password()
    asked = {**body, "code": code, "new_password": new}
    r = a.client.post("/api/v1/reset/confirm", json=asked, headers=headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == {
        "code": "invalid_input",
        "message": "An unlock code only unlocks the account: it does not set a password. "
        "To choose a new password, ask for a password reset code.",
    }
    nl = a.client.post("/api/v1/reset/confirm", json=asked, headers={**headers, "Accept-Language": "nl"})
    assert nl.status_code == 422 and nl.json()["error"]["message"].startswith("Een ontgrendelcode ontgrendelt alleen")
    assert portal.query("SELECT COUNT(*) FROM ticket WHERE subject = :u", u=user) == [(0,)]
    assert ldap_users.conn.run("account_status", {"user": user}, timeout=10)["locked"] is True
    assert new.encode() not in portal.stored_bytes()
    # the code was not tried: it unlocks, with the password the person has
    done = a.client.post("/api/v1/reset/confirm", json={**body, "code": code}, headers=headers)
    assert done.status_code == 200 and done.json()["state"] == "resolved", done.text
    assert ldap_users.bind_ok(user, pw) and not ldap_users.bind_ok(user, new)


def test_directory_refusal_after_the_proof_closes_the_ticket_and_keeps_the_code(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    """A refusal when the password is written changes nothing: the ticket records it, the form
    says why, and the code still works (test_selfservice_truth.py has the API and history)."""
    user, old = ldap_users.create_user()
    a = anon()
    a.request_code(user)
    code = wait_for_code(user)
    refused = a.redeem(user, code, old)  # the current password: refused when it is written
    assert refused.status_code == 422, refused.text
    assert "The new password is the same as the current one" in refused.text and 'id="new_password"' in refused.text
    assert old.encode() not in refused.content
    rows = portal.query("SELECT state, resolution_code FROM ticket WHERE requester = :r", r=f"{user}@example.org")
    assert rows == [("closed", "requester_action_needed")]
    assert ldap_users.bind_ok(user, old)
    assert a.redeem(user, code, good_password()).status_code == 200  # the code was kept
    assert old.encode() not in portal.stored_bytes()


def test_a_typed_name_that_is_no_account_is_in_no_audit_event(
    portal_with: Callable[..., PortalServer], ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    """Someone types their password into the login field (security.md items 37, 48): the audit
    chain, which cannot be edited, names the request by a keyed pseudonym of what was typed
    (``corp:?`` + 16 hex digits; the same name always the same), for the code request, the
    code redemption and through the API; the log does not hold it either. A real account
    is still named as it is."""
    server = portal_with(reset_pow_after=100)
    user, _ = ldap_users.create_user()
    typed = f"Sommer{secrets.token_hex(3)}Wind"  # a password-like login that is no account
    for _ in range(2):
        a = anon(server)
        a.request_code(typed)
    a = anon(server)
    r = a.client.post("/api/v1/reset/request", json={"login": typed}, headers={"X-CSRF-Token": a.csrf})
    assert r.status_code == 202, r.text
    a = anon(server)
    a.request_code(user)
    code = wait_for_code(user)
    for login in (typed, f"{typed}@example.org"):
        b = anon(server)
        refused = b.redeem(login, "12345678", good_password())
        assert refused.status_code in (400, 422), refused.text
    assert wait_audit(server, ("selfservice.code_sent",), f"corp:{user}", 1) == 1
    deadline = time.monotonic() + 15
    while len(unknown_not_sent(server)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    pseudonyms = {r[1] for r in unknown_not_sent(server)}
    assert len(unknown_not_sent(server)) == 3 and len(pseudonyms) == 1, unknown_not_sent(server)
    (pseudonym,) = pseudonyms
    assert re.fullmatch(r"corp:\?[0-9a-f]{16}", pseudonym), pseudonym
    refused_rows = [r for r in audit(server, "selfservice.code_refused") if r[0] == "no_live_code"]
    assert [r[1] for r in refused_rows] == [pseudonym, pseudonym], refused_rows
    rows = server.query("SELECT * FROM audit_event")
    every_value = " ".join(str(v) for row in rows for v in row).lower()
    assert typed.lower() not in every_value and typed[6:12] not in every_value
    assert user in every_value  # a real account is named as it is
    for log in [server.log, *server.data_dir.rglob("*.log")]:
        assert typed.lower() not in log.read_text(errors="replace").lower(), log
    # the code of the real account still works (nothing above touched it)
    assert anon(server).redeem(user, code, good_password()).status_code in (200, 303)
