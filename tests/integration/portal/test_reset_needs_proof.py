"""A signed-in session alone never resets a password (security review of issue 8, item 1).

Over HTTP against the real portal and the lab's slapd: an employee's session cannot run
``password-reset`` (only the one-time-code flow can), an agent cannot reset or unlock their
own account from the desk or the API, and an empty account never defaults to the agent.
Each refusal: the status and a reason, no ticket, no secret in the answer, and the
account's password unchanged in the directory (the old one still binds).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.portal_support import PortalServer, SignedIn, demo_password, sign_in

pytestmark = pytest.mark.both_databases

STRONG = "Qx-a-new-one 2026! lantern"


def _tickets(portal: PortalServer) -> int:
    return int(portal.query("SELECT COUNT(*) FROM ticket")[0][0])


def _no_secret(r: Any) -> None:
    assert "temporary_password" not in r.text and "secrets" not in r.json().get("error", {}), r.text
    assert STRONG not in r.text


def test_a_signed_in_employee_cannot_reset_their_password(portal: PortalServer, ldap_users: Any) -> None:
    login, password = ldap_users.create_user()
    employee = sign_in(portal, login, password, address="192.0.2.61")
    before = _tickets(portal)
    home = employee.get("/")
    assert "Reset a password" not in home.text and "Change my password" in home.text
    names = {e["name"] for e in employee.get("/api/v1/catalogue").json()}
    assert "password-reset" not in names and "password-change" in names
    for params in ({}, {"new_password": STRONG}, {"new_password": STRONG, "must_change": False}, {"user": login}):
        r = employee.post(
            "/api/v1/runs",
            json={"runbook": "password-reset", "params": params},
            headers={"X-CSRF-Token": employee.csrf},
        )
        # not offered (404); the runner refuses it on its own too (tests/unit/core/test_reset_proof.py)
        assert r.status_code in (403, 404), (params, r.status_code, r.text)
        assert r.json()["error"]["code"] in ("forbidden", "not_found") and r.json()["error"]["message"]
        _no_secret(r)
    # the page form is not offered either
    r = employee.post(
        "/fix/password-reset", data={"csrf_token": employee.csrf, "new_password": STRONG}, follow_redirects=False
    )
    assert r.status_code in (403, 404), r.status_code
    assert _tickets(portal) == before
    assert ldap_users.bind_ok(login, password) and not ldap_users.bind_ok(login, STRONG)
    employee.client.close()


@pytest.mark.parametrize("user", ["", None])
def test_an_empty_account_never_defaults_to_the_agent(portal: PortalServer, signed_in: Any, user: str | None) -> None:
    agent: SignedIn = signed_in("agent")
    before = _tickets(portal)
    for runbook in ("password-reset", "account-unlock"):
        params = {} if user is None else {"user": user}
        r = agent.post(
            "/api/v1/runs", json={"runbook": runbook, "params": params}, headers={"X-CSRF-Token": agent.csrf}
        )
        assert r.status_code == 422, (runbook, r.status_code, r.text)
        assert "never defaults to you" in r.json()["error"]["message"]
        _no_secret(r)
        r = agent.post(
            f"/api/v1/fixes/{runbook}",
            json={"user": user or "", "directory": "corp", "reason": "caller asked"},
            headers={"X-CSRF-Token": agent.csrf},
        )
        assert r.status_code == 422, (runbook, r.status_code, r.text)
    assert _tickets(portal) == before
    assert sign_in(portal, "agent", address="192.0.2.62")  # the agent's own password still works


@pytest.mark.parametrize("spelling", ["demo-agent", "DEMO-AGENT", "Demo-Agent"])
def test_an_agent_cannot_reset_or_unlock_their_own_account(portal: PortalServer, signed_in: Any, spelling: str) -> None:
    agent: SignedIn = signed_in("agent")
    before = _tickets(portal)
    for runbook in ("password-reset", "account-unlock"):
        r = agent.post(
            f"/api/v1/fixes/{runbook}",
            json={"user": spelling, "directory": "corp", "reason": "locked myself out"},
            headers={"X-CSRF-Token": agent.csrf},
        )
        assert r.status_code == 403, (runbook, spelling, r.status_code, r.text)
        assert "their own account" in r.json()["error"]["message"]
        _no_secret(r)
        page = agent.post(
            f"/agent/fixes/{runbook}",
            data={"csrf_token": agent.csrf, "user": spelling, "directory": "corp", "reason": "locked myself out"},
            follow_redirects=False,
        )
        assert page.status_code == 403, (runbook, spelling, page.status_code)
        assert "temporary" not in page.text.lower() or "their own account" in page.text
    assert _tickets(portal) == before
    fresh = sign_in(portal, "demo-agent", demo_password("demo-agent"), address="192.0.2.63")  # password unchanged
    fresh.client.close()
