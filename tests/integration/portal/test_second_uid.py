"""One OpenLDAP entry, two names: ``uid`` is multi-valued, and an entry often keeps its old
name after a rename (``uid: alice`` and ``uid: alice.old``). Either name finds it, so each
caller recorded the person under the name typed (a tester's find, 2026-12-02):

* an agent signed in by the second name saw their own account as someone else's and
  unlocked it (``own_account`` false, the fix resolved);
* a reset asked for by one name ended the sessions and tokens of that name only; whoever
  had signed in by the other name kept the account;
* tickets, audit targets and run locks named one entry two ways (``H1LOCK``, ``h1other``).

Now the connector gives the entry's own name (``account``: the uid in its DN), sign-in
records the person by it, the agent desk continues with it, and a password change ends the
sessions of that name as well as of the name typed. Real portal, real lab slapd.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from runner.ledger.portal_tables import portal_api_token, portal_session
from runner.ledger.tables import ticket
from runner.ticketnumber import ticket_id
from tests.databases import engine_for
from tests.portal_support import PortalServer, SignedIn, sign_in

pytestmark = pytest.mark.integration
GROUPS = "ou=groups,dc=example,dc=org"
REASON = "Second-name test, caller verified by phone"


@pytest.fixture
def agents_group(ldap_users: Any) -> Iterator[Any]:
    """``agents_group(*logins)`` → the DN of a fresh groupOfNames holding *logins*."""
    made: list[str] = []

    def make(*logins: str) -> str:
        cn = f"agents-{secrets.token_hex(3)}"
        dn = f"cn={cn},{GROUPS}"
        members = [ldap_users.dn(login) for login in logins]
        assert ldap_users.admin.add(dn, attributes={"objectClass": ["groupOfNames"], "cn": cn, "member": members})
        made.append(dn)
        return dn

    yield make
    for dn in made:
        ldap_users.admin.delete(dn)


def _two_names(ldap_users: Any) -> tuple[str, str, str]:
    """A fresh account that also answers to a second uid: (own name, second name, password)."""
    login, password = ldap_users.create_user()
    second = f"{login}-old"
    assert ldap_users.admin.modify(ldap_users.dn(login), {"uid": [("MODIFY_ADD", [second])]}), ldap_users.admin.result
    return login, second, password


def _fix(agent: SignedIn, runbook: str, user: str) -> Any:
    return agent.post(
        f"/api/v1/fixes/{runbook}",
        json={"reason": REASON, "user": user, "directory": "corp"},
        headers={"X-CSRF-Token": agent.csrf},
    )


def test_signing_in_by_the_second_name_is_the_same_person(portal: PortalServer, ldap_users: Any) -> None:
    own, second, password = _two_names(ldap_users)
    for typed in (second, second.upper(), own):
        me = sign_in(portal, typed, password)
        try:
            assert me.get("/api/v1/me").json()["account"] == f"{own}@example.org"
        finally:
            me.client.close()


def test_an_agent_cannot_reach_their_own_account_by_its_other_name(
    portal_with: Any, ldap_users: Any, agents_group: Any
) -> None:
    own, second, password = _two_names(ldap_users)
    portal = portal_with(agent_groups={"corp": [agents_group(own)]})
    agent = sign_in(portal, second, password)  # signed in by the old name
    ldap_users.lock(own)  # then locked out (the session lives on)
    try:
        for typed in (own, second, own.upper()):
            view = agent.get(f"/api/v1/directory/users/corp/{typed}").json()
            assert view["own_account"] is True and view["fixes"] == [], view
            assert view["user"] == own, view
            r = _fix(agent, "account-unlock", typed)
            assert r.status_code == 403, r.text
    finally:
        agent.client.close()
    assert ldap_users.conn.run("account_status", {"user": own}, timeout=10)["locked"] is True  # not unlocked
    with engine_for(portal.database_url).connect() as conn:
        assert conn.execute(select(ticket.c.id)).first() is None  # refused before any ticket


def test_a_reset_by_one_name_ends_the_sessions_and_tokens_of_the_other(
    portal: PortalServer, ldap_users: Any, signed_in: Any
) -> None:
    own, second, password = _two_names(ldap_users)
    person = sign_in(portal, second, password)  # by the old name
    made = person.post("/api/v1/tokens", json={"label": "laptop"}, headers={"X-CSRF-Token": person.csrf})
    assert made.status_code in (200, 201), made.text
    token = made.json()["token"]
    agent = signed_in("agent")
    try:
        r = _fix(agent, "password-reset", second.upper())  # typed by the old name, another case
        assert r.status_code == 200 and r.json()["state"] == "resolved", r.text
        number = r.json()["ticket"]
        assert person.get("/api/v1/me").status_code == 401  # the session ended
        bearer = person.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert bearer.status_code == 401 and bearer.json()["error"]["code"] == "invalid_token", bearer.text
    finally:
        person.client.close()
    with engine_for(portal.database_url).connect() as conn:
        row = conn.execute(select(ticket).where(ticket.c.id == ticket_id(number))).mappings().one()
        assert row["subject"] == own and row["requester"] == f"{own}@example.org", dict(row)
        assert '"user": "' + own + '"' in row["params"] or f'"user":"{own}"' in row["params"], row["params"]
        assert conn.execute(select(portal_session.c.id).where(portal_session.c.username == own)).first() is None
        live = select(portal_api_token.c.id).where(
            portal_api_token.c.username == own, portal_api_token.c.revoked_at.is_(None)
        )
        assert conn.execute(live).first() is None


def test_a_name_typed_in_another_case_is_recorded_as_the_directory_spells_it(
    portal: PortalServer, ldap_users: Any, signed_in: Any
) -> None:
    login, _pw = ldap_users.create_user()
    ldap_users.lock(login)
    agent = signed_in("agent")
    r = _fix(agent, "account-unlock", login.upper())
    assert r.status_code == 200 and r.json()["state"] == "resolved", r.text
    assert login.upper() not in r.json()["resolution_note"] and login in r.json()["resolution_note"]
    with engine_for(portal.database_url).connect() as conn:
        row = conn.execute(select(ticket).where(ticket.c.id == ticket_id(r.json()["ticket"]))).mappings().one()
    assert row["subject"] == login and login.upper() not in row["params"], dict(row)
