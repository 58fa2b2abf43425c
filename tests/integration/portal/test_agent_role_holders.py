"""The agent desk does not reset the password of someone who holds a portal role.

A reset shows the agent the new password: on a fellow agent's account the agent could then
act under that colleague's name, on an auditor's read what only auditors read. Against the
lab slapd: the demo auditor, and a fresh account put into the nested agents group (as the
demo agent is). Asserted on the directory (the old password still binds), the ledger (no
ticket, ``agent.fix_refused`` with its reason) and the answer; an unlock, which hands over
nothing, still works for such an account.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from ldap3 import MODIFY_ADD, MODIFY_DELETE

from tests.portal_support import PortalServer, SignedIn, demo_password

pytestmark = [pytest.mark.integration]

REASON = "Caller verified by phone, ticket INC-77"
NESTED_AGENTS = "cn=service-desk-l1,ou=groups,dc=example,dc=org"  # inside cn=service-desk-agents


def _reset(agent: SignedIn, user: str) -> httpx.Response:
    answer: httpx.Response = agent.post(
        "/api/v1/fixes/password-reset",
        json={"reason": REASON, "user": user, "directory": "corp"},
        headers={"X-CSRF-Token": agent.csrf},
    )
    return answer


def _refusals(portal: PortalServer, target: str) -> list[str]:
    rows = portal.query(
        "SELECT reason FROM audit_event WHERE action = 'agent.fix_refused' AND target = :target ORDER BY seq",
        target=target,
    )
    return [str(r[0]) for r in rows]


def _tickets(portal: PortalServer) -> int:
    return int(portal.query("SELECT COUNT(*) FROM ticket")[0][0])


def test_an_auditors_password_is_not_reset_from_the_desk(portal: PortalServer, signed_in: Any, ldap_users: Any) -> None:
    agent: SignedIn = signed_in("agent")
    tickets = _tickets(portal)
    answer = _reset(agent, "demo-auditor")
    assert answer.status_code == 403, answer.text
    assert "holds a role in Firstline" in answer.json()["error"]["message"]
    assert "temporary_password" not in answer.text
    assert _tickets(portal) == tickets
    assert _refusals(portal, "corp:demo-auditor")[-1:] == ["portal_role"]
    assert ldap_users.bind_ok("demo-auditor", demo_password("demo-auditor"))  # unchanged
    dutch = agent.post(
        "/api/v1/fixes/password-reset",
        json={"reason": REASON, "user": "demo-auditor", "directory": "corp"},
        headers={"X-CSRF-Token": agent.csrf, "Accept-Language": "nl"},
    )
    assert dutch.status_code == 403 and "heeft een rol in Firstline" in dutch.json()["error"]["message"]


def test_a_fellow_agent_is_not_reset_but_is_unlocked(portal: PortalServer, signed_in: Any, ldap_users: Any) -> None:
    agent: SignedIn = signed_in("agent")
    user, password = ldap_users.create_user(given="Fellow", sn="Agent")
    dn = ldap_users.dn(user)
    assert ldap_users.admin.modify(NESTED_AGENTS, {"member": [(MODIFY_ADD, [dn])]}), ldap_users.admin.result
    try:
        fellow: SignedIn = signed_in(user, password=password)  # sign-in gives them the agent role
        assert "agent" in fellow.get("/api/v1/me").json()["roles"]
        tickets = _tickets(portal)
        answer = _reset(agent, user)
        assert answer.status_code == 403 and "holds a role in Firstline" in answer.json()["error"]["message"]
        assert _tickets(portal) == tickets and _refusals(portal, f"corp:{user}") == ["portal_role"]
        assert ldap_users.bind_ok(user, password)
        ldap_users.lock(user)
        unlocked = agent.post(
            "/api/v1/fixes/account-unlock",
            json={"reason": REASON, "user": user, "directory": "corp"},
            headers={"X-CSRF-Token": agent.csrf},
        )
        assert unlocked.status_code == 200 and unlocked.json()["state"] == "resolved", unlocked.text
        assert not ldap_users.state_attrs(user).get("pwdAccountLockedTime")
    finally:
        ldap_users.admin.modify(NESTED_AGENTS, {"member": [(MODIFY_DELETE, [dn])]})


def test_an_employee_is_still_reset(portal: PortalServer, signed_in: Any, ldap_users: Any) -> None:
    agent: SignedIn = signed_in("agent")
    user, password = ldap_users.create_user()
    answer = _reset(agent, user)
    assert answer.status_code == 200 and answer.json()["state"] == "resolved", answer.text
    assert answer.json()["temporary_password"]
    assert not ldap_users.bind_ok(user, password)
    assert _refusals(portal, f"corp:{user}") == []


def test_the_look_up_does_not_offer_a_reset_it_would_refuse(
    portal: PortalServer, signed_in: Any, ldap_users: Any
) -> None:
    """The look-up offered the reset form for a role holder, and the agent learnt only after
    typing a reason that it is refused. It now withholds it and says why (API and page, in
    English and Dutch); the unlock stays offered, and an employee is offered both."""
    agent: SignedIn = signed_in("agent")
    view = agent.get("/api/v1/directory/users/corp/demo-auditor").json()
    assert view["exists"] and view["fixes"] == ["account-unlock"]
    assert [(w["fix"], w["reason"]) for w in view["withheld"]] == [("password-reset", "portal_role")]
    assert "holds a role in Firstline" in view["withheld"][0]["message"]
    dutch = agent.get("/api/v1/directory/users/corp/demo-auditor", headers={"Accept-Language": "nl"}).json()
    assert "heeft een rol in Firstline" in dutch["withheld"][0]["message"]
    page = agent.get("/agent/account", params={"directory": "corp", "user": "demo-auditor"})
    assert page.status_code == 200
    assert 'action="/agent/fixes/password-reset"' not in page.text
    assert 'action="/agent/fixes/account-unlock"' in page.text
    assert "is not offered here." in page.text and "holds a role in Firstline" in page.text
    nl = agent.get(
        "/agent/account", params={"directory": "corp", "user": "demo-auditor"}, headers={"Accept-Language": "nl"}
    )
    assert "wordt hier niet aangeboden." in nl.text and "heeft een rol in Firstline" in nl.text
    user, _password = ldap_users.create_user()
    plain = agent.get(f"/api/v1/directory/users/corp/{user}").json()
    assert sorted(plain["fixes"]) == ["account-unlock", "password-reset"] and plain["withheld"] == []
    employee_page = agent.get("/agent/account", params={"directory": "corp", "user": user})
    assert 'action="/agent/fixes/password-reset"' in employee_page.text and "not offered here" not in employee_page.text
