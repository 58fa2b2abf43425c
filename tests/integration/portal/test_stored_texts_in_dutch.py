"""Stored English ticket texts on Dutch answers and pages, over HTTP against the real portal.

* A resolved run's message is its rendered resolution note. The live progress stream's
  ``done`` event and the polling API (``/api/v1/tickets/{n}/events``, ``/api/v1/tickets/mine/{n}``)
  gave it in English on a Dutch request while the page showed the runbook's Dutch note, so a
  Dutch page turned English when a run finished (``static/progress.js`` writes ``message``).
* The agent desk in Dutch showed a resolved ticket's message and note in English (the
  runbooks have ``resolution.note.nl``), reason codes raw ("Doorgegeven aan de tweede lijn
  timeout") and step statuses raw ("failed (timeout)").

Failed and closed tickets keep their (already translated) messages. A connector's message
from a remote host ("ssh: ... did not finish within 30 s") stays as written.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from runner.runs import REQUESTER_GUIDANCE
from tests.portal_support import PortalServer, SignedIn
from tests.seed import portal_ledger

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

REASON = "Caller verified by phone, ticket INC-77"
NL = {"Accept-Language": "nl"}
SURFACES = ("mine", "events", "stream")  # /api/v1/tickets/mine/{n}, /api/v1/tickets/{n}/events, the stream's done
SSH_TIMEOUT = "ssh: 'svcctl' on print-01 did not finish within 30 s; the remote process group was killed"


def _stored(portal: PortalServer, number: str) -> tuple[str, str | None, dict[str, str]]:
    """The ticket's stored (English) message and note, and the note's stored translations."""
    message, note, i18n = portal.query(
        "SELECT message, resolution_note, resolution_note_i18n FROM ticket WHERE id = :id",
        id=int(number.removeprefix("FL-")),
    )[0]
    return message, note, json.loads(i18n) if i18n else {}


def _done_event(stream: str) -> dict[str, Any]:
    found = re.search(r"^event: done\ndata: (.+)$", stream, re.MULTILINE)
    assert found, stream
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def _account(employee: SignedIn) -> str:
    found = re.search(r"<dt>[^<]+</dt><dd><code>([^<]+)</code>", employee.get("/me").text)
    assert found, "the /me page names the account"
    return found.group(1)


def _follow_texts(employee: SignedIn, number: str, **kwargs: Any) -> dict[str, str | None]:
    """The ticket's message as each employee surface gives it: both polling answers and the stream's ``done``."""
    mine = employee.get(f"/api/v1/tickets/mine/{number}", **kwargs)
    events = employee.get(f"/api/v1/tickets/{number}/events", params={"after": 0}, **kwargs)
    stream = employee.get(f"/me/tickets/{number}/events", **kwargs)
    assert mine.status_code == events.status_code == stream.status_code == 200, (mine.text, events.text)
    return {
        "mine": mine.json()["message"],
        "events": events.json()["message"],
        "stream": _done_event(stream.text)["message"],
        "note": mine.json()["resolution_note"],
    }


def test_a_resolved_runs_message_is_dutch_in_the_stream_and_the_polling_api(
    portal: PortalServer, signed_in: Callable[..., SignedIn]
) -> None:
    from tests.integration.conftest import start_lab

    start_lab("sshd", "cups")
    employee = signed_in("employee")
    r = employee.post(
        "/api/v1/runs",
        json={"runbook": "printer-queue-clear", "params": {"printer": "office-1"}},
        headers={"X-CSRF-Token": employee.csrf, **NL},
    )
    assert r.status_code == 201 and r.json()["state"] == "resolved", r.text
    number = r.json()["ticket"]
    english, note, i18n = _stored(portal, number)
    assert english == note and ("was already empty" in english or "cancelled on" in english), english
    dutch = i18n["nl"]  # "De wachtrij van ... was al leeg" or "... afdruktaak/-taken geannuleerd op ..."
    assert "Office printer 1" in dutch and ("De wachtrij van" in dutch or "geannuleerd op" in dutch), dutch
    # the run's own answer too (POST /api/v1/runs gave the stored English)
    assert (r.json()["message"], r.json()["resolution_note"]) == (dutch, dutch), r.text

    by_header = _follow_texts(employee, number, headers=NL)
    assert by_header == {"mine": dutch, "events": dutch, "stream": dutch, "note": dutch}
    # the language cookie (the portal's language switch) counts as much as the header
    with httpx.Client(base_url=portal.base_url, cookies=employee.client.cookies, timeout=30) as client:
        client.cookies.set("fl_lang", "nl")
        by_cookie = _follow_texts(SignedIn(client, employee.csrf, "", "", employee.login), number)
    assert by_cookie == by_header
    page = employee.get(f"/me/tickets/{number}", headers=NL)
    assert dutch in html.unescape(page.text) and english not in html.unescape(page.text)
    # English readers keep the stored text
    assert set(_follow_texts(employee, number, headers={"Accept-Language": "en"}).values()) == {english}


def test_failed_and_closed_tickets_keep_their_messages_in_dutch(
    portal: PortalServer, signed_in: Callable[..., SignedIn]
) -> None:
    employee = signed_in("employee")
    account = _account(employee)
    led = portal_ledger(portal.data_dir, portal.database_url)
    try:
        escalated = led.ticket(
            state="escalated",
            requester=account,
            subject=account,
            runbook="printer-queue-clear",
            reason="internal_error",
            message="The runbook could not finish.",
        )
        closed = led.ticket(
            state="closed",
            requester=account,
            subject=account,
            runbook="account-unlock",
            reason="unknown_account",
            message="The account does not exist.",
            resolution_code="requester_action_needed",
            resolution_note=REQUESTER_GUIDANCE["en"],
        )
    finally:
        led.engine.dispose()
    texts = _follow_texts(employee, f"FL-{escalated:06d}", headers=NL)
    assert texts == {**dict.fromkeys(SURFACES, "Het runbook kon niet afronden."), "note": None}
    texts = _follow_texts(employee, f"FL-{closed:06d}", headers=NL)
    assert texts == {**dict.fromkeys(SURFACES, "Het account bestaat niet."), "note": REQUESTER_GUIDANCE["nl"]}


def _agent_fix(agent: SignedIn, runbook: str, body: dict[str, Any]) -> str:
    r = agent.post(
        f"/api/v1/fixes/{runbook}", json={"reason": REASON, **body}, headers={"X-CSRF-Token": agent.csrf}, timeout=90
    )
    assert r.status_code == 200 and r.json()["state"] == "resolved", (runbook, r.text)
    number: str = r.json()["ticket"]
    return number


def _dutch_desk(agent: SignedIn, path: str, **params: Any) -> str:
    with httpx.Client(base_url=agent.client.base_url, cookies=agent.client.cookies, timeout=30) as client:
        client.cookies.set("fl_lang", "nl")
        page = client.get(path, params=params)
    assert page.status_code == 200, page.text[:500]
    return page.text


def test_the_agent_desk_shows_resolved_tickets_notes_and_steps_in_dutch(
    portal: PortalServer, signed_in: Callable[..., SignedIn], ldap_users: Any
) -> None:
    from tests.integration.conftest import start_lab

    start_lab("sshd", "cups")
    agent = signed_in("agent")
    locked, _pw = ldap_users.create_user()
    ldap_users.lock(locked)
    other, _pw = ldap_users.create_user()
    numbers = [
        _agent_fix(agent, "account-unlock", {"user": locked, "directory": "corp"}),
        _agent_fix(agent, "password-reset", {"user": other, "directory": "corp"}),
        _agent_fix(agent, "printer-queue-clear", {"choice": "office-2"}),
        _agent_fix(agent, "service-restart", {"choice": "lab-daemon"}),
        _agent_fix(agent, "disk-cleanup", {"choice": "app-cache"}),
    ]
    for number in numbers:
        english, note, i18n = _stored(portal, number)
        assert english == note and i18n.get("nl") and i18n["nl"] != english, (number, english, i18n)
        page = _dutch_desk(agent, f"/agent/tickets/{number}")
        text = html.unescape(page)
        # "Melding" (the message) and "Oplossing" (the note) both in the runbook's Dutch
        assert text.count(i18n["nl"]) == 2 and english not in text, (number, text)
        assert "<td>klaar</td>" in page and "<td>ok</td>" not in page and "<td>skipped</td>" not in page
        english_page = html.unescape(agent.get(f"/agent/tickets/{number}", headers={"Accept-Language": "en"}).text)
        assert english_page.count(english) == 2 and "<td>done</td>" in english_page


def test_the_agent_desk_gives_reasons_and_step_statuses_in_words(
    portal: PortalServer, signed_in: Callable[..., SignedIn]
) -> None:
    led = portal_ledger(portal.data_dir, portal.database_url)
    try:
        escalated = led.ticket(
            state="escalated",
            directory=None,
            subject="print-01",
            runbook="service-restart",
            params=json.dumps({"service": "lab-hang"}),
            reason="timeout",
            message=SSH_TIMEOUT,
        )
        closed = led.ticket(
            state="closed",
            directory="corp",
            runbook="account-unlock",
            reason="disabled",
            message="The account is disabled; the service desk can help.",
        )
    finally:
        led.engine.dispose()
    portal.execute(
        "INSERT INTO step_result (ticket_id, seq, step_id, connector, action, target, status, inputs, outputs,"
        " reason, message, attempts, started_at, finished_at, event_seq) VALUES (:t, 1, 'restart_linux', 'ssh',"
        " 'service_restart', 'print-01', 'failed', '{}', '{}', 'timeout', :m, 1, '2026-11-30T07:00:00Z',"
        " '2026-11-30T07:00:30Z', 2)",
        t=escalated,
        m=SSH_TIMEOUT,
    )
    agent = signed_in("agent")
    page = _dutch_desk(agent, f"/agent/tickets/FL-{escalated:06d}")
    assert 'Doorgegeven aan de tweede lijn (<span title="timeout">geen antwoord op tijd</span>)' in page, page
    assert 'mislukt (<span title="timeout">geen antwoord op tijd</span>)' in page
    assert "<code>timeout</code>" not in page and "failed (timeout)" not in page
    assert SSH_TIMEOUT in html.unescape(page)  # a remote host's own message stays as written
    queue = _dutch_desk(agent, "/agent/escalated", limit=200)
    assert "geen antwoord op tijd</span>)" in queue and "<code>timeout</code>" not in queue
    page = _dutch_desk(agent, f"/agent/tickets/FL-{closed:06d}")
    assert (
        '(<span title="disabled">het account is uitgeschakeld</span>)' in page and "<code>disabled</code>" not in page
    )
    english = agent.get(f"/agent/tickets/FL-{escalated:06d}", headers={"Accept-Language": "en"}).text
    assert "no answer in time" in english and "failed (" in english
