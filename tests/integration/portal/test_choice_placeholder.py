"""A choice (a printer, a service, a folder) is never made for the person.

A tester pressed Tab, then Enter, on the employee's "Clear a print queue" form: the first
printer of the list was pre-selected, so a queue nobody chose was cleared. Both the
employee's form and the agent desk's host fixes now start on "Choose one…" (empty, required:
the browser refuses to send it), and the server refuses an empty choice without a ticket.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.portal_support import PortalServer, SignedIn

pytestmark = [pytest.mark.integration]

TOKEN = re.compile(r'name="form_token" value="([A-Za-z0-9_-]+)"')
PLACEHOLDER = '<option value="" selected>Choose one…</option>'


def _tickets(portal: PortalServer) -> int:
    return int(portal.query("SELECT COUNT(*) FROM ticket")[0][0])


def test_the_employee_printer_form_starts_on_no_printer(portal: PortalServer, signed_in: Any) -> None:
    employee: SignedIn = signed_in("employee")
    page = employee.get("/fix/printer-queue-clear")
    assert page.status_code == 200
    select = page.text.split('name="printer"', 1)[1].split("</select>", 1)[0]
    assert PLACEHOLDER in select and select.count(" selected") == 1  # only the placeholder
    dutch = employee.get("/fix/printer-queue-clear", headers={"Accept-Language": "nl"})
    assert '<option value="" selected>Kies er een…</option>' in dutch.text
    before = _tickets(portal)
    token = TOKEN.search(page.text)
    assert token is not None
    sent = employee.post(
        "/fix/printer-queue-clear",
        data={"csrf_token": employee.csrf, "form_token": token.group(1), "printer": ""},
        follow_redirects=False,
    )
    assert sent.status_code == 422, sent.text[:300]
    assert _tickets(portal) == before


def test_the_agent_host_fixes_start_on_no_choice(portal: PortalServer, signed_in: Any) -> None:
    agent: SignedIn = signed_in("agent")
    page = agent.get("/agent")
    assert page.status_code == 200
    for name in ("printer-queue-clear", "service-restart", "disk-cleanup"):
        select = page.text.split(f'id="fix-{name}-choice"', 1)[1].split("</select>", 1)[0]
        assert PLACEHOLDER in select and select.count(" selected") == 1, name
    before = _tickets(portal)
    token = TOKEN.search(page.text)
    assert token is not None
    sent = agent.post(
        "/agent/fixes/printer-queue-clear",
        data={"csrf_token": agent.csrf, "form_token": token.group(1), "choice": "", "reason": "Caller on the phone"},
        follow_redirects=False,
    )
    assert sent.status_code == 422, sent.text[:300]
    assert _tickets(portal) == before
