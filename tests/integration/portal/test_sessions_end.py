"""A password changed through Firstline ends every portal session of that account (and only
that account's), on the real slapd with the real password-reset runbook."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import pytest

from portal.runs import _end_sessions_after_password_change
from runner.api import open_app
from runner.auth import AuthService
from runner.settings import Settings
from tests.portal_support import REPO, PortalServer, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]


def test_password_reset_ends_the_sessions_of_that_account(portal_with: Any, ldap_users: Any) -> None:
    server: PortalServer = portal_with()
    login, password = ldap_users.create_user()
    victim_a = sign_in(server, login, password, address="192.0.2.10")
    victim_b = sign_in(server, login.upper(), password, address="192.0.2.11")  # a second browser
    bystander = sign_in(server, "employee", address="192.0.2.12")
    assert victim_a.get("/api/v1/me").status_code == 200
    settings = Settings(
        environment="test",
        data_dir=server.data_dir,
        database_url=server.database_url,
        inventory=REPO / "lab" / "inventory.yaml",
        runbooks_dir=REPO / "runbooks",
        log_file=server.data_dir / "test-side.log",
    )
    fl = open_app(settings)
    try:
        outcome = fl.run(
            "password-reset",
            {"user": login},
            requester=login,
            roles={"agent"},
            channel="portal",
            actor_id="demo-agent@example.org",
        )
        assert outcome.state == "resolved", (outcome.reason, outcome.message)
        assert not ldap_users.bind_ok(login, password)  # the password really changed
        ctx = SimpleNamespace(firstline=fl, auth=AuthService(fl))
        _end_sessions_after_password_change(ctx, outcome)  # type: ignore[arg-type]
    finally:
        fl.close()
    for s in (victim_a, victim_b):
        r = s.get("/api/v1/me")
        assert r.status_code == 401, r.text
    assert bystander.get("/api/v1/me").status_code == 200
    assert server.query("SELECT count(*) FROM portal_session WHERE username = :u", u=login.lower()) == [(0,)]
    events = server.query("SELECT actor, reason, detail FROM audit_event WHERE action = 'portal.sessions_ended'")
    assert events and events[-1][1] == "password_changed" and '"sessions":2' in events[-1][2]
    for s in (victim_a, victim_b, bystander):
        s.client.close()


def test_temporary_password_signs_in_straight_to_the_password_change(portal_with: Any, ldap_users: Any) -> None:
    from tests.portal_support import post_signin

    server: PortalServer = portal_with()
    login, _password = ldap_users.create_user()
    temporary = _temporary_password(server, login)
    r = post_signin(server, login, temporary, address="192.0.2.30")
    assert r.status_code == 303
    assert r.headers["location"] == "/fix/password-change"
    # an ordinary sign-in goes where it was asked to
    assert post_signin(server, "demo-employee", _demo("demo-employee"), address="192.0.2.31").headers["location"] == "/"


def _temporary_password(server: PortalServer, login: str) -> str:
    """An agent's reset of *login* (the real runbook, beside the portal): the temporary password."""
    settings = Settings(
        environment="test",
        data_dir=server.data_dir,
        database_url=server.database_url,
        inventory=REPO / "lab" / "inventory.yaml",
        runbooks_dir=REPO / "runbooks",
        log_file=server.data_dir / "test-side.log",
    )
    fl = open_app(settings)
    try:
        outcome = fl.run(
            "password-reset", {"user": login}, requester=login, roles={"agent"}, actor_id="demo-agent@example.org"
        )
    finally:
        fl.close()
    assert outcome.state == "resolved", outcome.message
    return str(next(v for k, v in outcome.secrets.items() if k.endswith(".temporary_password")))


def _demo(login: str) -> str:
    from tests.portal_support import demo_password

    return demo_password(login)


def test_a_password_reset_revokes_the_api_tokens_of_that_account(portal: PortalServer, ldap_users: Any) -> None:
    """An API token made by whoever signed in with the old password kept acting as the
    account (and with its roles) after the agent reset the password: the sessions ended,
    the token did not, and tokens never expire. Now the reset revokes the account's live
    tokens too (audited), over HTTP as an agent does it; another person's token still works."""
    login, password = ldap_users.create_user()
    victim = sign_in(portal, login, password, address="192.0.2.40")
    bystander = sign_in(portal, "employee", address="192.0.2.41")
    tokens = {}
    for who in (victim, bystander):
        made = who.post("/api/v1/tokens", json={"label": "laptop"}, headers={"X-CSRF-Token": who.csrf})
        assert made.status_code == 201, made.text
        tokens[who.login] = made.json()["token"]

    def with_token(token: str) -> int:
        return portal.client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code

    assert with_token(tokens[login]) == 200
    agent = sign_in(portal, "agent", address="192.0.2.42")
    body = {"reason": "account reported compromised", "user": login, "directory": "corp"}
    r = agent.post("/api/v1/fixes/password-reset", json=body, headers={"X-CSRF-Token": agent.csrf})
    assert r.status_code == 200 and r.json()["state"] == "resolved", r.text
    assert victim.get("/api/v1/me").status_code == 401
    assert with_token(tokens[login]) == 401
    run = portal.client().post(
        "/api/v1/runs", json={"runbook": "account-status"}, headers={"Authorization": f"Bearer {tokens[login]}"}
    )
    assert run.status_code == 401, run.text
    assert with_token(tokens[bystander.login]) == 200
    rows = portal.query("SELECT revoked_at FROM portal_api_token WHERE username = :u", u=login.lower())
    assert len(rows) == 1 and rows[0][0] is not None
    events = portal.query(
        "SELECT reason, detail FROM audit_event WHERE action = 'portal.api_tokens_revoked' AND on_behalf_of = :u",
        u=login.lower(),
    )
    assert [(reason, json.loads(detail)) for reason, detail in events] == [("password_changed", {"tokens": 1})]
    for s in (victim, bystander, agent):
        s.client.close()


def test_a_temporary_password_session_may_only_change_it(portal_with: Any, ldap_users: Any) -> None:
    """The agent who reset the password saw the temporary one. Signed in with it, the session
    was sent to the change page once and could then do anything — run fixes as the person,
    or make an API token that a change of the password elsewhere would not revoke. Now,
    until the password is changed, every other page redirects to the change page and every
    other API call is 403 ``password_change_required``; the change itself works, and a
    sign-in with the new password is an ordinary one."""
    from tests.integration.portal.test_selfservice import good_password
    from tests.portal_support import cookie_value, csrf_from, set_cookie_values, start_anonymous

    server: PortalServer = portal_with()
    login, _password = ldap_users.create_user()
    temporary = _temporary_password(server, login)
    client, csrf = start_anonymous(server, "192.0.2.50")
    signed = client.post("/signin", data={"csrf_token": csrf, "username": login, "password": temporary, "next": "/me"})
    assert signed.status_code == 303 and signed.headers["location"] == "/fix/password-change"
    name, header = next((n, h) for n, h in set_cookie_values(signed).items() if n.endswith("fl_session"))
    client.cookies.clear()
    client.cookies.set(name, cookie_value(header))
    tickets_before = server.query("SELECT count(*) FROM ticket")[0][0]
    for page in ("/", "/me", "/me/tokens", "/fix/account-status", "/kpi"):
        r = client.get(page)
        assert (r.status_code, r.headers.get("location")) == (303, "/fix/password-change"), (page, r.status_code)
    change_page = client.get("/fix/password-change")
    assert change_page.status_code == 200
    assert "You signed in with a temporary password" in change_page.text  # the page says why it is here
    form_csrf = csrf_from(change_page.text)
    api = {"X-CSRF-Token": form_csrf}
    me = client.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["password_change_required"] is True
    for method, path, body in (
        ("POST", "/api/v1/tokens", {"label": "keep me"}),
        ("POST", "/api/v1/runs", {"runbook": "account-status"}),
        ("GET", "/api/v1/catalogue", None),
    ):
        r = client.request(method, path, json=body, headers=api)
        assert r.status_code == 403 and r.json()["error"]["code"] == "password_change_required", (path, r.text)
        assert "Your password is temporary" in r.json()["error"]["message"]
    dutch = client.post("/api/v1/tokens", json={"label": "x"}, headers={**api, "Accept-Language": "nl"})
    assert "Uw wachtwoord is tijdelijk" in dutch.json()["error"]["message"]
    assert server.query("SELECT count(*) FROM portal_api_token WHERE username = :u", u=login.lower()) == [(0,)]
    assert server.query("SELECT count(*) FROM ticket")[0][0] == tickets_before
    new = good_password()
    changed = client.post(
        "/fix/password-change",
        data={"csrf_token": form_csrf, "old_password": temporary, "new_password": new, "new_password_again": new},
    )
    assert changed.status_code == 303, (changed.status_code, changed.text[:300])
    # the new password ended this session: straight to the sign-in page, which says why
    assert changed.headers["location"].startswith("/signin?changed=true&next=/me/tickets/FL-"), changed.headers
    again = client.get(changed.headers["location"], headers={"Accept-Language": "nl"})
    assert "Uw wachtwoord is gewijzigd" in again.text, again.text[:500]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = server.query("SELECT state FROM ticket WHERE subject = :u ORDER BY id DESC", u=login)
        if state and state[0][0] not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert state[0][0] == "resolved", state
    assert ldap_users.bind_ok(login, new)
    client.close()
    fresh = sign_in(server, login, new, address="192.0.2.51")  # an ordinary session: the home page answers
    assert fresh.get("/api/v1/me").json()["password_change_required"] is False
    fresh.client.close()
