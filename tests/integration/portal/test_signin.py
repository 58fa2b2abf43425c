"""Portal sign-in against the real lab slapd: roles from (nested) groups, one message for
every refusal, throttling before the directory, session cookie flags and storage,
sign-out, expiry, CSRF on the sign-in form."""

from __future__ import annotations

import hashlib
import re
import secrets
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.databases import MakeDatabaseUrl
from tests.portal_support import (
    PortalServer,
    cookie_value,
    demo_password,
    post_signin,
    set_cookie_values,
    sign_in,
    start_anonymous,
)

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

SAME_MESSAGE = "The user name or password is not correct."


def _address() -> str:
    return f"198.51.100.{secrets.randbelow(250) + 1}"


def _notice(html: str) -> str:
    found = re.search(r'<div class="notice notice-error" role="alert" id="signin-error">\s*<p>(.*?)</p>', html, re.S)
    assert found, html[:2000]
    return found.group(1).strip()


@pytest.mark.parametrize(
    ("role", "login", "roles"),
    [
        ("employee", "demo-employee", ["employee"]),
        ("agent", "demo-agent", ["agent", "employee"]),  # through cn=service-desk-l1, a nested group
        ("auditor", "demo-auditor", ["auditor", "employee"]),
    ],
)
def test_demo_people_sign_in_with_roles_from_their_groups(
    portal: PortalServer, role: str, login: str, roles: list[str]
) -> None:
    s = sign_in(portal, role, address=_address())
    me = s.get("/api/v1/me").json()
    assert me["roles"] == roles
    assert me["account"] == f"{login}@example.org"
    assert me["directory"] == "corp"
    assert me["via"] == "session"
    s.client.close()


@pytest.mark.parametrize(
    "spelling", ["demo-agent@example.org", "EXAMPLE-ORG\\demo-agent", "DEMO-Agent", "  demo-agent  "]
)
def test_other_spellings_of_the_same_account_sign_in_as_that_account(portal: PortalServer, spelling: str) -> None:
    s = sign_in(portal, spelling, demo_password("demo-agent"), address=_address())
    me = s.get("/api/v1/me").json()
    assert me["account"] == "demo-agent@example.org"
    assert me["roles"] == ["agent", "employee"]
    s.client.close()


def test_every_refusal_says_the_same_and_signs_nobody_in(portal: PortalServer, ldap_users: Any) -> None:
    login, password = ldap_users.create_user()
    lab = {"frozen", "gone", "eve"}  # admin-locked, expired, outside base_dn (users.json passwords)
    import json

    from tests.portal_support import REPO

    users = json.loads((REPO / "var/lab/slapd/secrets/users.json").read_text())
    attempts = [
        (login, password + "x"),  # wrong password
        (login.upper(), "wrong"),
        ("nobody-" + secrets.token_hex(4), password),  # unknown account
        ("nobody@example.org", password),
        ("someone@not-served.example", password),  # a domain this desk does not serve
        ("EXAMPLE-ORG\\", password),  # domain without a name
        ("*)(uid=*", password),  # filter injection
        ("a" * 300, password),
        (login, ""),  # empty password (an anonymous bind would "succeed")
        ("", password),
        *[(u, users[u]) for u in sorted(lab)],  # right password, but locked / expired / outside the base
    ]
    messages = set()
    for name, pw in attempts:
        r = post_signin(portal, name, pw, address=_address())
        assert r.status_code == 401, (name, r.status_code)
        assert not any(n.endswith("fl_session") for n in set_cookie_values(r)), name
        messages.add(_notice(r.text))
    assert messages == {SAME_MESSAGE}
    # the refused attempts are audited without naming anyone; the passwords are nowhere
    rows = portal.query("SELECT actor, outcome, client_ip FROM audit_event WHERE action = 'portal.sign_in'")
    assert ("unidentified", "refused") in {(a, o) for a, o, _ip in rows}
    stored = portal.stored_bytes()
    assert password.encode() not in stored
    assert (password + "x").encode() not in stored
    # a typed name is only kept as a digest in the throttle table
    assert login.encode() not in b"".join(str(r).encode() for r in portal.query("SELECT * FROM portal_throttle"))


def test_dutch_refusal_is_translated(portal: PortalServer) -> None:
    client, csrf = start_anonymous(portal, _address())
    with closing(client):
        r = client.post(
            "/signin",
            data={"csrf_token": csrf, "username": "nobody", "password": "x"},
            headers={"Accept-Language": "nl-NL,nl;q=0.9"},
        )
    assert r.status_code == 401
    assert _notice(r.text) == "De gebruikersnaam of het wachtwoord klopt niet."


def test_throttles_are_checked_before_the_directory(portal_with: Any, ldap_users: Any) -> None:
    server = portal_with(signin_max_per_account=2, signin_max_per_address=4, signin_window_seconds=600)
    login, password = ldap_users.create_user()
    addr = _address()
    for _ in range(2):
        assert post_signin(server, login, "wrong-" + secrets.token_hex(3), address=addr).status_code == 401
    # the right password now: refused without asking the directory (which would have said yes)
    r = post_signin(server, login, password, address=_address())
    assert r.status_code == 429
    assert "Too many failed sign-ins" in r.text
    assert int(r.headers["Retry-After"]) > 0
    assert not any(n.endswith("fl_session") for n in set_cookie_values(r))
    state = ldap_users.read(login, "pwdFailureTime", "pwdAccountLockedTime")
    assert len(state.get("pwdFailureTime", [])) == 2  # the third attempt never reached slapd
    assert not state.get("pwdAccountLockedTime")
    # other spellings of the same name count as the same account
    assert post_signin(server, login.upper(), password, address=_address()).status_code == 429
    # per address: four failures (other names) from one address block that address, for anyone
    busy = _address()
    for i in range(4):
        assert post_signin(server, f"nobody{i}", "x", address=busy).status_code == 401
    assert post_signin(server, "demo-employee", demo_password("demo-employee"), address=busy).status_code == 429
    # another address is not affected
    assert post_signin(server, "demo-employee", demo_password("demo-employee"), address=_address()).status_code == 303


def test_every_spelling_of_an_account_shares_its_sign_in_budget(portal_with: Any, ldap_users: Any) -> None:
    """The per-account throttle counted each spelling on its own: after the limit for
    ``alice``, ``alice@example.org`` and ``EXAMPLE-ORG\\alice`` each had a fresh budget (three
    times the guesses, from any number of addresses). Now they are one account."""
    server = portal_with(signin_max_per_account=2, signin_max_per_address=50, signin_window_seconds=600)
    login, password = ldap_users.create_user()
    assert (
        post_signin(server, f"{login}@example.org", "wrong-" + secrets.token_hex(3), address=_address()).status_code
        == 401
    )
    assert (
        post_signin(server, f"EXAMPLE-ORG\\{login}", "wrong-" + secrets.token_hex(3), address=_address()).status_code
        == 401
    )
    for spelling in (login, f"{login}@example.org", f"example-org\\{login}", f"{login.upper()}@EXAMPLE.ORG"):
        r = post_signin(server, spelling, password, address=_address())
        assert r.status_code == 429, (spelling, r.status_code)
        assert not any(n.endswith("fl_session") for n in set_cookie_values(r))
    assert len(ldap_users.read(login, "pwdFailureTime").get("pwdFailureTime", [])) == 2  # no more reached slapd
    # a name that routes nowhere keeps a budget of its own, as typed
    for _ in range(2):
        assert post_signin(server, f"{login}@elsewhere.example", "x", address=_address()).status_code == 401
    assert post_signin(server, f"{login}@elsewhere.example", "x", address=_address()).status_code == 429


def test_session_cookie_flags_and_only_a_digest_is_stored(portal: PortalServer) -> None:
    s = sign_in(portal, "employee", address=_address())
    header = s.extra["set_cookie"]
    assert s.cookie_name == "__Host-fl_session"  # environment=test: Secure, and the __Host- prefix
    flags = {f.strip().split("=")[0].lower() for f in header.split(";")[1:]}
    assert {"httponly", "secure", "path", "samesite"} <= flags
    assert "samesite=lax" in header.lower()
    assert "domain" not in flags
    digest = hashlib.sha256(s.cookie_value.encode()).hexdigest()
    assert portal.query("SELECT count(*) FROM portal_session WHERE token_sha256 = :d", d=digest) == [(1,)]
    assert s.cookie_value.encode() not in portal.stored_bytes()
    s.client.close()


def test_dev_cookie_is_not_secure(portal_with: Any) -> None:
    server = portal_with(environment="dev")
    s = sign_in(server, "employee")
    assert s.cookie_name == "fl_session"
    assert "secure" not in s.extra["set_cookie"].lower()
    s.client.close()


def test_sign_out_ends_the_session(portal: PortalServer) -> None:
    s = sign_in(portal, "employee", address=_address())
    digest = hashlib.sha256(s.cookie_value.encode()).hexdigest()
    forged = s.post("/signout", data={"csrf_token": "0" * 64})
    assert forged.status_code == 403
    assert s.get("/api/v1/me").status_code == 200  # a forged sign-out changed nothing
    r = s.post("/signout", data={"csrf_token": s.csrf})
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    cleared = set_cookie_values(r)[s.cookie_name]
    assert cookie_value(cleared) == "" and "max-age=0" in cleared.lower()
    assert portal.query("SELECT count(*) FROM portal_session WHERE token_sha256 = :d", d=digest) == [(0,)]
    assert s.get("/api/v1/me").status_code == 401
    s.client.close()


@pytest.mark.parametrize("which", ["idle", "absolute"])
def test_expired_session_sends_pages_to_sign_in_and_api_gets_401(portal: PortalServer, which: str) -> None:
    s = sign_in(portal, "employee", address=_address())
    digest = hashlib.sha256(s.cookie_value.encode()).hexdigest()
    past = (datetime.now(UTC) - timedelta(minutes=31 if which == "idle" else 1)).isoformat(timespec="microseconds")
    column = "last_seen_at" if which == "idle" else "expires_at"
    portal.execute(f"UPDATE portal_session SET {column} = :past WHERE token_sha256 = :d", past=past, d=digest)
    page = s.get("/me/tokens")
    assert page.status_code == 303
    assert page.headers["location"] == "/signin?next=%2Fme%2Ftokens"
    api = s.get("/api/v1/me")
    assert api.status_code == 401
    assert api.json()["error"]["code"] == "signin_required"
    assert portal.query("SELECT count(*) FROM portal_session WHERE token_sha256 = :d", d=digest) == [(0,)]
    # a form posted with the old session's token changes nothing either
    r = s.post("/api/v1/tokens", json={"label": "late"}, headers={"X-CSRF-Token": s.csrf})
    assert r.status_code == 401
    assert portal.query("SELECT count(*) FROM portal_api_token WHERE label = 'late'") == [(0,)]
    s.client.close()


def test_sign_in_form_needs_its_csrf_token(portal: PortalServer) -> None:
    client, csrf = start_anonymous(portal, _address())
    login, password = "demo-employee", demo_password("demo-employee")
    with closing(client):
        for data in (
            {"username": login, "password": password},
            {"username": login, "password": password, "csrf_token": "f" * 64},
            {"username": login, "password": password, "csrf_token": [csrf, csrf]},
        ):
            r = client.post("/signin", data=data)
            assert r.status_code == 403
            assert "did not come from this site" in r.text
            assert not any(n.endswith("fl_session") for n in set_cookie_values(r))
    # a token from another browser's pre-session is not valid here either
    other, other_csrf = start_anonymous(portal, _address())
    other.close()
    client2, _csrf2 = start_anonymous(portal, _address())
    with closing(client2):
        r = client2.post("/signin", data={"username": login, "password": password, "csrf_token": other_csrf})
        assert r.status_code == 403


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x"])
def test_next_never_leaves_the_site(portal: PortalServer, target: str) -> None:
    client, csrf = start_anonymous(portal, _address())
    with closing(client):
        r = client.post(
            "/signin",
            data={
                "csrf_token": csrf,
                "username": "demo-employee",
                "password": demo_password("demo-employee"),
                "next": target,
            },
        )
    assert r.status_code == 303
    assert r.headers["location"] == "/"


def test_sign_in_audit_event_carries_client_address_and_user_agent(portal: PortalServer) -> None:
    addr = _address()
    s = sign_in(portal, "agent", address=f"203.0.113.9, {addr}")  # right-most untrusted hop is the client
    rows = portal.query(
        "SELECT actor, client_ip, user_agent FROM audit_event WHERE action = 'portal.sign_in' AND outcome = 'success' "
        "ORDER BY seq DESC LIMIT 1"
    )
    assert rows[0][0] == "demo-agent@example.org"
    assert rows[0][1] == addr
    assert rows[0][2].startswith("python-httpx/")
    s.client.close()


def test_a_user_agent_in_utf8_is_audited_as_written(portal: PortalServer) -> None:
    """The ASGI server hands headers over as Latin-1: "\u00a0=ua Zürich" was audited as
    "Â?=ua ZÃ¼rich" (a tester's find). UTF-8 bytes are read as UTF-8; control characters
    still become ``?``."""
    marker = secrets.token_hex(4)
    agent = f"probe {marker} Zürich\u00a0ünï"
    client, csrf = start_anonymous(portal, _address())
    with closing(client):
        r = client.post(
            "/signin",
            data={"csrf_token": csrf, "username": f"nobody-{marker}", "password": "x", "next": "/"},
            headers={"User-Agent": agent.encode("utf-8")},
        )
    assert r.status_code == 401
    rows = portal.query(
        "SELECT user_agent FROM audit_event WHERE action = 'portal.sign_in' AND user_agent LIKE :m", m=f"%{marker}%"
    )
    assert [row[0] for row in rows] == [f"probe {marker} Zürich?ünï"]  # NBSP is not printable: '?'


def test_every_refused_sign_in_takes_at_least_the_floor(portal_with: Any, ldap_users: Any) -> None:
    import time

    server = portal_with(signin_min_seconds=0.6)
    login, _password = ldap_users.create_user()
    for name, pw in ((f"nobody-{secrets.token_hex(3)}", "x"), (login, "wrong"), ("*)(uid=*", "x"), ("", "")):
        client, csrf = start_anonymous(server, _address())
        with closing(client):
            started = time.monotonic()
            r = client.post("/signin", data={"csrf_token": csrf, "username": name, "password": pw})
            took = time.monotonic() - started
        assert r.status_code == 401
        assert took >= 0.6, (name, took)


def test_throttles_are_shared_by_every_portal_process(
    portal_lab: None, tmp_path: Any, ldap_users: Any, make_database_url: MakeDatabaseUrl
) -> None:
    url = make_database_url(tmp_path / "shared" / "firstline.db")
    settings = {"signin_max_per_account": 2, "signin_window_seconds": 600, "database_url": url}
    first = PortalServer.start(tmp_path / "shared", **settings)
    second = PortalServer.start(tmp_path / "shared", **settings)  # same database, another process
    try:
        login, password = ldap_users.create_user()
        for _ in range(2):
            assert post_signin(first, login, "wrong", address=_address()).status_code == 401
        assert post_signin(second, login, password, address=_address()).status_code == 429
    finally:
        first.stop()
        second.stop()


def test_a_sign_in_purges_dead_sessions_and_old_throttles(portal_with: Any) -> None:
    server = portal_with(signin_window_seconds=60)
    old = (datetime.now(UTC) - timedelta(days=2)).isoformat(timespec="microseconds")
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="microseconds")
    for digest, last, end in (("a" * 64, old, soon), ("b" * 64, soon, old)):  # idle too long / past its end
        server.execute(
            "INSERT INTO portal_session (token_sha256, account, directory, username, dn, display_name, roles, "
            "created_at, last_seen_at, expires_at) VALUES (:d, 'x', 'corp', 'x', 'uid=x', 'X', 'employee', :created, "
            ":last, :end)",
            d=digest,
            created=old,
            last=last,
            end=end,
        )
    server.execute("INSERT INTO portal_throttle (key, window_start, failures) VALUES ('account:old', :at, 9)", at=old)
    s = sign_in(server, "employee", address=_address())
    assert server.query("SELECT token_sha256 FROM portal_session") == [
        (hashlib.sha256(s.cookie_value.encode()).hexdigest(),)
    ]
    assert server.query("SELECT count(*) FROM portal_throttle WHERE key = 'account:old'") == [(0,)]
    s.client.close()


@pytest.mark.parametrize(
    "fields",
    [
        {"username": ["nobody-else", "ME"]},  # the last one signed in
        {"username": ["ME", "ME"]},
        {"username": ["ME", "nobody-else"]},
        {"username": "ME", "password": ["wrong", "RIGHT"]},
    ],
    ids=["other-then-real", "same-twice", "real-then-other", "password-twice"],
)
def test_a_field_sent_twice_is_a_malformed_sign_in(
    portal: PortalServer, ldap_users: Any, fields: dict[str, Any]
) -> None:
    """username=a&username=b signed in as b (the form parser keeps the last one): which account
    was meant? Refused like any malformed sign-in, the same answer whatever the names."""
    login, password = ldap_users.create_user()  # a throwaway: the refusals count against it

    def real(value: Any) -> Any:
        if isinstance(value, list):
            return [real(v) for v in value]
        return {"ME": login, "RIGHT": password}.get(value, value)

    data = {"password": password, **{k: real(v) for k, v in fields.items()}}
    for lang, words in (("en", SAME_MESSAGE), ("nl", "De gebruikersnaam of het wachtwoord klopt niet.")):
        client, csrf = start_anonymous(portal, _address())
        with closing(client):
            r = client.post(
                "/signin", data={"csrf_token": csrf, **data, "next": "/"}, headers={"Accept-Language": lang}
            )
        assert r.status_code == 401, (lang, r.status_code, r.headers.get("location"))
        assert not any(n.endswith("fl_session") for n in set_cookie_values(r))
        assert _notice(r.text) == words
    malformed = post_signin(portal, login, "", address=_address())  # an empty password, for comparison
    assert malformed.status_code == 401 and _notice(malformed.text) == SAME_MESSAGE


def test_after_a_failed_sign_in_the_keyboard_is_back_in_the_form(portal: PortalServer) -> None:
    """Focus landed on <body> after an error: a keyboard user tabbed past the skip link, the
    logo and both language buttons to get back to the field (a tester's find). The field to
    fix now has autofocus: the password when the name was kept, else the name."""
    page = post_signin(portal, "demo-employee", "not-the-password", address="192.0.2.71")
    assert page.status_code == 401
    password = next(line for line in page.text.splitlines() if 'id="password"' in line)
    username = next(line for line in page.text.splitlines() if 'id="username"' in line)
    assert "autofocus" in password and 'aria-describedby="signin-error"' in password
    assert "autofocus" not in username
    client, _csrf = start_anonymous(portal, "192.0.2.72")
    with closing(client):
        assert "autofocus" not in client.get("/signin").text  # no error: the page leaves the focus alone
