"""A password changed through Firstline ends every portal session of that account (and only
that account's), on the real slapd with the real password-reset runbook."""

from __future__ import annotations

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
    temporary = next(v for k, v in outcome.secrets.items() if k.endswith(".temporary_password"))
    r = post_signin(server, login, temporary, address="192.0.2.30")
    assert r.status_code == 303
    assert r.headers["location"] == "/fix/password-change"
    # an ordinary sign-in goes where it was asked to
    assert post_signin(server, "demo-employee", _demo("demo-employee"), address="192.0.2.31").headers["location"] == "/"


def _demo(login: str) -> str:
    from tests.portal_support import demo_password

    return demo_password(login)
