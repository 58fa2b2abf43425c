"""A form sent after the session ended comes back to its page, and the sign-in page says that
what was sent was not done.

Found by a tester: an agent's unlock sent after the idle timeout went to the sign-in page with
no word of why, and after signing in to ``/agent/fixes/account-unlock`` — an address that
takes POST only: "This address does not accept GET requests" (405), the fix not done.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import text

from tests.portal_support import PortalServer, engine_for, sign_in

pytestmark = [pytest.mark.integration]

TOKEN = re.compile(r'name="form_token" value="([A-Za-z0-9_-]+)"')


def test_an_agent_fix_sent_after_the_session_ended_comes_back_to_the_desk(
    portal_with: Callable[..., PortalServer],
) -> None:
    portal = portal_with(session_idle_minutes=1)
    agent = sign_in(portal, "agent")
    page = agent.get("/agent")
    token = TOKEN.search(page.text)
    assert token is not None
    before = int(portal.query("SELECT COUNT(*) FROM ticket")[0][0])
    engine = engine_for(portal.database_url)
    try:
        with engine.begin() as conn:  # idle long ago
            conn.execute(text("UPDATE portal_session SET last_seen_at = '2000-01-01T00:00:00.000000+00:00'"))
    finally:
        engine.dispose()
    time.sleep(0.1)
    sent = agent.post(
        "/agent/fixes/account-unlock",
        data={
            "csrf_token": agent.csrf,
            "form_token": token.group(1),
            "user": "demo-employee",
            "directory": "corp",
            "reason": "Caller verified by phone",
        },
        follow_redirects=False,
    )
    assert sent.status_code == 303
    where = urlsplit(sent.headers["location"])
    assert where.path == "/signin"
    query = parse_qs(where.query)
    assert query == {"next": ["/agent"], "ended": ["true"]}
    assert int(portal.query("SELECT COUNT(*) FROM ticket")[0][0]) == before  # nothing was done
    shown = agent.get(sent.headers["location"])
    assert shown.status_code == 200
    assert "Your session has ended, so what you last sent was not done." in shown.text
    dutch = agent.get(sent.headers["location"], headers={"Accept-Language": "nl"})
    assert "Uw sessie is beëindigd" in dutch.text
    again = sign_in(portal, "agent")
    assert again.get("/agent").status_code == 200  # the page the form was on, not a POST-only address


def test_a_page_asked_for_without_a_session_keeps_its_address_and_says_nothing_of_an_end(
    portal: PortalServer,
) -> None:
    with portal.client() as client:
        answer = client.get("/agent/escalated?limit=5", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=%2Fagent%2Fescalated%3Flimit%3D5"
