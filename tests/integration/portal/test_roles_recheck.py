"""A session or API token does not keep roles its account no longer has.

Roles are read at sign-in; every ``role_recheck_seconds`` the portal asks the directory
again (``runner.auth.AuthService.recheck``). Against the lab slapd, with the re-read due
after 1 s: an agent taken out of the agents group keeps signing in as an employee but is
refused the agent desk, by session and by token; an account an administrator locked for
good (OpenLDAP's year-0 ``pwdAccountLockedTime``: disabled) or deleted loses every session
and token. Asserted on the answers, the stored rows and the audit events.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE

from tests.portal_support import PortalServer, SignedIn, sign_in

pytestmark = [pytest.mark.integration]

NESTED_AGENTS = "cn=service-desk-l1,ou=groups,dc=example,dc=org"  # inside cn=service-desk-agents
RECHECK = 1  # seconds


def _agent(ldap_users: Any, portal: PortalServer) -> tuple[str, SignedIn, str]:
    """A fresh account in the agents group, signed in, with an API token: (user, session, token)."""
    user, password = ldap_users.create_user(given="Temp", sn="Agent")
    assert ldap_users.admin.modify(NESTED_AGENTS, {"member": [(MODIFY_ADD, [ldap_users.dn(user)])]})
    session = sign_in(portal, user, password=password)
    made = session.post("/api/v1/tokens", json={"label": "script"}, headers={"X-CSRF-Token": session.csrf})
    assert made.status_code == 201, made.text
    return user, session, str(made.json()["token"])


def _bearer(portal: PortalServer, token: str, path: str) -> httpx.Response:
    with httpx.Client(base_url=portal.base_url) as client:
        return client.get(path, headers={"Authorization": f"Bearer {token}"})


def _events(portal: PortalServer, action: str, user: str) -> list[tuple[Any, ...]]:
    return portal.query(
        "SELECT reason, detail FROM audit_event WHERE action = :action"
        " AND (on_behalf_of = :who OR on_behalf_of LIKE :domain) ORDER BY seq",
        action=action,
        who=user,
        domain=f"{user}@%",
    )


def test_an_agent_taken_out_of_the_group_loses_the_desk_by_session_and_token(
    portal_with: Callable[..., PortalServer], ldap_users: Any
) -> None:
    portal = portal_with(role_recheck_seconds=RECHECK)
    user, session, token = _agent(ldap_users, portal)
    try:
        assert session.get("/api/v1/directories").status_code == 200
        assert _bearer(portal, token, "/api/v1/directories").status_code == 200
        assert ldap_users.admin.modify(NESTED_AGENTS, {"member": [(MODIFY_DELETE, [ldap_users.dn(user)])]})
        time.sleep(RECHECK + 0.2)
        refused = session.get("/api/v1/directories")
        assert refused.status_code == 403, refused.text
        assert "agent role" in refused.json()["error"]["message"]
        assert _bearer(portal, token, "/api/v1/directories").status_code == 403
        me = session.get("/api/v1/me")
        assert me.status_code == 200 and me.json()["roles"] == ["employee"]  # still an employee
        assert _bearer(portal, token, "/api/v1/me").json()["roles"] == ["employee"]
        stored = portal.query(
            "SELECT roles FROM portal_session WHERE username = :u UNION ALL "
            "SELECT roles FROM portal_api_token WHERE username = :u",
            u=user,
        )
        assert [r[0] for r in stored] == ["employee", "employee"]
        changed = _events(portal, "portal.roles_changed", user)
        assert len(changed) == 2  # the session's and the token's
        assert all('"after":["employee"]' in str(d) and '"agent"' in str(d) for _r, d in changed)
        # back in the group: a re-read never adds a role; the next sign-in does
        assert ldap_users.admin.modify(NESTED_AGENTS, {"member": [(MODIFY_ADD, [ldap_users.dn(user)])]})
        time.sleep(RECHECK + 0.2)
        assert session.get("/api/v1/directories").status_code == 403
    finally:
        session.client.close()
        ldap_users.admin.modify(NESTED_AGENTS, {"member": [(MODIFY_DELETE, [ldap_users.dn(user)])]})


@pytest.mark.parametrize("how", ["disabled", "deleted"])
def test_a_disabled_or_deleted_account_loses_every_session_and_token(
    portal_with: Callable[..., PortalServer], ldap_users: Any, how: str
) -> None:
    portal = portal_with(role_recheck_seconds=RECHECK)
    user, session, token = _agent(ldap_users, portal)
    dn = ldap_users.dn(user)
    try:
        assert session.get("/api/v1/me").status_code == 200
        assert ldap_users.admin.modify(NESTED_AGENTS, {"member": [(MODIFY_DELETE, [dn])]})
        if how == "disabled":  # slapd's administrator lock: no bind works any more
            assert ldap_users.admin.modify(dn, {"pwdAccountLockedTime": [(MODIFY_REPLACE, ["000001010000Z"])]})
        else:
            assert ldap_users.admin.delete(dn)
            ldap_users.created.remove(user)
        time.sleep(RECHECK + 0.2)
        assert session.get("/api/v1/me").status_code == 401
        assert _bearer(portal, token, "/api/v1/me").status_code == 401
        assert portal.query("SELECT COUNT(*) FROM portal_session WHERE username = :u", u=user)[0][0] == 0
        revoked = portal.query("SELECT revoked_at FROM portal_api_token WHERE username = :u", u=user)
        assert len(revoked) == 1 and revoked[0][0] is not None
        reason = "account_disabled" if how == "disabled" else "account_gone"
        assert [r for r, _d in _events(portal, "portal.sessions_ended", user)] == [reason]
        assert [r for r, _d in _events(portal, "portal.api_tokens_revoked", user)] == [reason]
        page = session.get("/agent", follow_redirects=False)  # the pages: back to the sign-in
        assert page.status_code in (302, 303) and "/signin" in page.headers["location"]
    finally:
        session.client.close()


def test_roles_are_not_read_again_before_they_are_due(portal: PortalServer, signed_in: Any, ldap_users: Any) -> None:
    """With the default (300 s), a signed-in agent's requests ask the directory nothing more:
    the group change shows only after the re-read is due (this portal: never, in this test)."""
    user, password = ldap_users.create_user(given="Steady", sn="Agent")
    dn = ldap_users.dn(user)
    assert ldap_users.admin.modify(NESTED_AGENTS, {"member": [(MODIFY_ADD, [dn])]})
    agent: SignedIn = signed_in(user, password=password)
    try:
        assert ldap_users.admin.modify(NESTED_AGENTS, {"member": [(MODIFY_DELETE, [dn])]})
        assert agent.get("/api/v1/directories").status_code == 200
        assert _events(portal, "portal.roles_changed", user) == []
    finally:
        ldap_users.admin.modify(NESTED_AGENTS, {"member": [(MODIFY_DELETE, [dn])]})


def test_a_token_that_does_not_work_says_so_and_asks_for_a_bearer_token(portal: PortalServer, signed_in: Any) -> None:
    """RFC 6750 3.1: 401 ``invalid_token`` with ``WWW-Authenticate: Bearer ... error="invalid_token"``
    for a revoked or unknown token (was "Sign in first.", the same as no credentials at all)."""
    employee: SignedIn = signed_in("employee")
    made = employee.post("/api/v1/tokens", json={"label": "old script"}, headers={"X-CSRF-Token": employee.csrf})
    assert made.status_code == 201
    token, token_id = str(made.json()["token"]), made.json()["id"]
    assert _bearer(portal, token, "/api/v1/me").status_code == 200
    revoked = employee.delete(f"/api/v1/tokens/{token_id}", headers={"X-CSRF-Token": employee.csrf})
    assert revoked.status_code == 204, revoked.text
    for value in (token, "fl_" + "x" * 43):
        answer = _bearer(portal, value, "/api/v1/me")
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "invalid_token"
        assert "revoked or has expired" in answer.json()["error"]["message"]
        assert answer.headers["www-authenticate"] == 'Bearer realm="firstline", error="invalid_token"'
    with httpx.Client(base_url=portal.base_url) as client:
        bare = client.get("/api/v1/me")
    assert bare.status_code == 401 and bare.json()["error"]["code"] == "signin_required"
    assert bare.headers["www-authenticate"] == 'Bearer realm="firstline"'
