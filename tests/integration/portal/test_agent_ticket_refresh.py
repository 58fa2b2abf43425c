"""The agent's ticket page keeps itself up to date while its run works.

Found by a tester: after a quick double submit (or any slow host fix) the page showed "In
progress" and never changed (no script, no refresh). It now reloads itself (meta refresh,
no script needed) until the ticket is final, and never while it shows a temporary password.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import text

from tests.portal_support import PortalServer, SignedIn, engine_for

pytestmark = [pytest.mark.integration]

REFRESH = re.compile(r'<meta http-equiv="refresh" content="(\d+)">')


def test_a_ticket_still_running_reloads_itself_and_a_final_one_does_not(
    portal: PortalServer, signed_in: Any, ldap_users: Any
) -> None:
    agent: SignedIn = signed_in("agent")
    user, _pw = ldap_users.create_user()
    ldap_users.lock(user)
    done = agent.post(
        "/api/v1/fixes/account-unlock",
        json={"reason": "Caller verified", "user": user, "directory": "corp"},
        headers={"X-CSRF-Token": agent.csrf},
    )
    assert done.status_code == 200 and done.json()["state"] == "resolved"
    final = agent.get(f"/agent/tickets/{done.json()['ticket']}")
    assert final.status_code == 200 and REFRESH.search(final.text) is None
    ticket_id = int(done.json()["ticket"].split("-")[1])
    engine = engine_for(portal.database_url)
    try:
        with engine.begin() as conn:  # the same ticket as a run still working would show it
            conn.execute(text("UPDATE ticket SET state = 'running' WHERE id = :i"), {"i": ticket_id})
        working = agent.get(f"/agent/tickets/{done.json()['ticket']}")
        found = REFRESH.search(working.text)
        assert working.status_code == 200 and found is not None and found.group(1) == "2"
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE ticket SET state = 'resolved' WHERE id = :i"), {"i": ticket_id})
        engine.dispose()
