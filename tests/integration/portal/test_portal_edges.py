"""Small things a person meets: the browser's own /favicon.ico request, an oversized sign-in
field (the sign-in form again with a sentence, not a bare validation error), and ticket
times on the agent's ticket page as people read them.

Real portal (uvicorn subprocess) over the lab's slapd; see tests/portal_support.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.portal_support import PortalServer, SignedIn, start_anonymous


def test_favicon_is_served_not_404(portal: PortalServer) -> None:
    with portal.client() as client:
        icon = client.get("/favicon.ico", follow_redirects=True)
        assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
        assert b"<svg" in icon.content
        page = client.get("/signin")
        assert '<link rel="icon" href="/static/favicon.svg"' in page.text


@pytest.mark.parametrize(
    ("field", "size", "says"),
    [
        ("username", 321, "The sign-in name is too long: at most 320 characters."),
        ("password", 1025, "The password is too long: at most 1024 characters."),
    ],
)
def test_an_oversized_sign_in_field_gets_the_form_again_with_a_sentence(
    portal: PortalServer, field: str, size: int, says: str
) -> None:
    client, csrf = start_anonymous(portal)
    try:
        form = {"csrf_token": csrf, "username": "alice", "password": "x", "next": "/"} | {field: "a" * size}
        r = client.post("/signin", data=form)
        assert r.status_code == 422
        assert says in r.text and '<form method="post" action="/signin"' in r.text
        assert "a" * 100 not in r.text  # the oversized value is not echoed
        long_next = client.post("/signin", data={**form, field: "a", "next": "/" + "x" * 600})
        assert long_next.status_code == 401 and 'name="next" value="/"' in long_next.text
    finally:
        client.close()


def test_nl_oversized_sign_in_name(portal: PortalServer) -> None:
    client, csrf = start_anonymous(portal)
    try:
        r = client.post(
            "/signin",
            data={"csrf_token": csrf, "username": "b" * 400, "password": "x"},
            headers={"Accept-Language": "nl"},
        )
        assert r.status_code == 422 and "De aanmeldnaam is te lang: hoogstens 320 tekens." in r.text
    finally:
        client.close()


def test_agent_ticket_page_shows_times_in_words_not_iso(signed_in: Any) -> None:
    agent: SignedIn = signed_in("agent")
    r = agent.post(
        "/api/v1/fixes/account-unlock",
        json={"user": "alice", "directory": "corp", "reason": "caller verified by callback"},
        headers={"X-CSRF-Token": agent.csrf},
    )
    assert r.status_code == 200, r.text
    page = agent.get(f"/agent/tickets/{r.json()['ticket']}")
    assert page.status_code == 200
    shown = re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', page.text)
    assert shown, page.text[:2000]
    for stamp, text in shown:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", text) and stamp.startswith(text[:10])


def test_an_employees_ticket_reads_in_dutch_note_and_messages(signed_in: Any) -> None:
    employee: SignedIn = signed_in("employee")
    ran = employee.post(
        "/api/v1/runs",
        json={"runbook": "account-status", "params": {}},
        headers={"X-CSRF-Token": employee.csrf},
    )
    assert ran.status_code == 201, ran.text
    number = ran.json()["ticket"]
    en = employee.get(f"/api/v1/tickets/mine/{number}").json()
    nl = employee.get(f"/api/v1/tickets/mine/{number}", headers={"Accept-Language": "nl"}).json()
    assert en["resolution_note"].startswith("Account ") and "not locked" in en["resolution_note"]
    assert "niet geblokkeerd" in nl["resolution_note"] and "not locked" not in nl["resolution_note"]
    assert {s["message"] for s in en["steps"]} == {"Done"} and {s["message"] for s in nl["steps"]} == {"Klaar"}
    page = employee.get(f"/me/tickets/{number}", headers={"Accept-Language": "nl"})
    assert "niet geblokkeerd" in page.text


@pytest.mark.parametrize(
    ("role", "path", "dutch"),
    [
        ("employee", "/api/v1/tickets/mine/FL-999999", "Er is geen ticket van u met dat nummer."),
        ("employee", "/me/tickets/FL-999999", "Er is geen ticket van u met dat nummer."),
        ("auditor", "/api/v1/audit/events?since=2026-12-01&until=2026-11-01", "until moet later zijn dan since"),
        ("auditor", "/api/v1/audit/events?cursor=garbage", "de paginalink is niet geldig"),
        ("agent", "/api/v1/tickets/escalated?cursor=zz", "de paginalink is niet geldig"),
        ("auditor", "/kpi?since=2026-11-02&until=2026-11-01", "until moet later zijn dan since"),
    ],
)
def test_runner_refusals_read_in_dutch(signed_in: Any, role: str, path: str, dutch: str) -> None:
    """These answers stayed English on a Dutch request: their texts were raised in runner/
    and never reached the catalogue (the catalogue check: test_runner_messages_in_dutch)."""
    person: SignedIn = signed_in(role)
    answer = person.get(path, headers={"Accept-Language": "nl"})
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    assert dutch in answer.text, answer.text[:500]
