"""An escalated ticket's message is written for the employee ("the service desk can help");
on the agent desk it told the service desk to ask itself. The desk now reads what to do and
what second level needs; the employee's own ticket page keeps the employee's sentence.
Over HTTP against the real portal, English and Dutch."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.portal_support import PortalServer, SignedIn
from tests.seed import portal_ledger

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

EXPIRED = "The account has expired; the service desk can help."
EMPLOYEE = {"en": EXPIRED, "nl": "Het account is verlopen; de servicedesk kan helpen."}
DESK = {
    "en": ("Hand it to second level", "the new end date, approved by the"),
    "nl": ("Geef het door aan de tweede lijn", "de nieuwe einddatum, goedgekeurd door de leidinggevende"),
}


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_the_desk_reads_guidance_for_the_desk_the_employee_keeps_theirs(
    portal: PortalServer, signed_in: Callable[..., SignedIn], lang: str
) -> None:
    employee = signed_in("employee")
    account = re.search(r"<dt>[^<]+</dt><dd><code>([^<]+)</code>", employee.get("/me").text)
    assert account, "the /me page names the account"
    led = portal_ledger(portal.data_dir, portal.database_url)
    try:
        key = led.ticket(
            state="escalated",
            directory="corp",
            requester=account.group(1),
            subject=account.group(1),
            runbook="account-unlock",
            reason="expired",
            message=EXPIRED,
        )
    finally:
        led.engine.dispose()
    number = f"FL-{key:06d}"
    headers = {"Accept-Language": lang}

    desk = signed_in("agent").get(f"/agent/tickets/{number}", headers=headers)
    assert desk.status_code == 200, desk.text[:500]
    assert all(part in desk.text for part in DESK[lang]), desk.text
    assert EMPLOYEE[lang] not in desk.text and "service desk can help" not in desk.text
    queue = signed_in("agent").get("/agent/escalated", params={"limit": 200}, headers=headers)
    assert DESK[lang][0] in queue.text and EMPLOYEE[lang] not in queue.text

    own = employee.get(f"/me/tickets/{number}", headers=headers)
    assert own.status_code == 200, own.text[:500]
    assert EMPLOYEE[lang] in own.text and DESK[lang][0] not in own.text
