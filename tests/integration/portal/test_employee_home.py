"""The employee's side over HTTP: catalogue and search, generated forms, runs for themself only,
my tickets in plain words, step progress (server-sent events and the polling API).

Real portal (uvicorn), real lab slapd and SMTP sink; see tests/portal_support.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.portal_support import PortalServer, SignedIn, sign_in

pytestmark = pytest.mark.both_databases

TITLES = re.compile(r"<h2>(.*?)</h2>")


def titles(html: str) -> list[str]:
    return [t for t in TITLES.findall(html) if t not in ("Steps", "Stappen")]


def test_catalogue_offers_self_service_fixes_only_with_server_side_search(
    signed_in: Callable[..., SignedIn],
) -> None:
    employee = signed_in("employee")
    home = employee.get("/")
    assert home.status_code == 200
    shown = titles(home.text)
    assert {"Unlock an account", "Change my password", "Clear a stuck print queue", "Check an account"} <= set(shown)
    assert "Reset a password" not in shown  # signed in: change with the current password; reset needs a code
    assert "Restart a service" not in shown and "Free disk space" not in shown  # agent-only runbooks
    # the employee's own account is the target: no account or directory field, secrets as password inputs
    assert 'name="user"' not in home.text and 'name="directory"' not in home.text
    assert 'name="mfa_verified"' not in home.text  # settable by agents only
    assert re.search(r'name="new_password" type="password"', home.text)  # password-change
    # search: title, description and phrases, any language, case and accents ignored, no JavaScript needed
    for query, expected in (
        ("printer", ["Clear a stuck print queue"]),
        ("LOCKED OUT", ["Unlock an account"]),
        ("wáchtwoord wijzigen", ["Change my password"]),
        ("forgot password", []),  # password-reset is not offered to a signed-in employee
    ):
        found = titles(employee.get("/", params={"q": query}).text)
        assert found == expected, (query, found)
    empty = employee.get("/", params={"q": "coffee machine"})
    assert titles(empty.text) == [] and "No fix matches" in empty.text
    hostile = employee.get("/", params={"q": "<script>alert(1)</script>" * 50})
    assert hostile.status_code == 200 and "<script>alert" not in hostile.text
    # the same over JSON
    api = employee.get("/api/v1/catalogue", params={"q": "password"}).json()
    names = {e["name"] for e in api}
    assert "password-change" in names and not {"password-reset", "account-unlock"} & names
    fields = {f["name"]: f for e in api for f in e["fields"]}
    assert "user" not in fields and fields["new_password"]["input"] == "password"
    # Dutch labels
    nl = employee.get("/", headers={"Accept-Language": "nl"})
    assert "Account ontgrendelen" in nl.text and "Zoek in de oplossingen" in nl.text


def test_agent_sees_agent_fixes_too(signed_in: Callable[..., SignedIn]) -> None:
    agent = signed_in("agent")
    names = {e["name"] for e in agent.get("/api/v1/catalogue").json()}
    assert {"service-restart", "disk-cleanup", "account-unlock"} <= names


def test_employee_runs_only_for_themself(portal: PortalServer, signed_in: Callable[..., SignedIn]) -> None:
    employee = signed_in("employee")
    before = portal.query("SELECT COUNT(*) FROM ticket")[0][0]
    # a hand-made form field naming someone else is refused (a field the form does not have),
    # before any ticket; the form itself runs for the employee
    r = employee.post(
        "/fix/account-status",
        data={"csrf_token": employee.csrf, "user": "alice", "directory": "ad"},
        follow_redirects=False,
    )
    assert r.status_code == 422 and "is not a field of this request" in r.text
    assert portal.query("SELECT COUNT(*) FROM ticket")[0][0] == before
    r = employee.post("/fix/account-status", data={"csrf_token": employee.csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/me/tickets/FL-")
    number = r.headers["location"].rsplit("/", 1)[1]
    row = portal.query("SELECT requester, subject, channel, directory FROM ticket WHERE id = :id", id=int(number[3:]))
    assert row == [("demo-employee@example.org", "demo-employee", "portal", "corp")], row
    # over JSON a parameter naming someone else is refused with the reason, before any ticket
    count = portal.query("SELECT COUNT(*) FROM ticket")[0][0]
    for runbook, params in (
        ("account-status", {"user": "alice"}),
        ("account-status", {"user": "alice@example.org"}),
        ("account-status", {"user": "EXAMPLE\\alice"}),
        ("account-status", {"user": "demo-employee", "directory": "ad"}),
        ("password-reset", {"mfa_verified": True, "new_password": "Qx-a-new-one 2026!"}),
    ):
        r = employee.post(
            "/api/v1/runs",
            json={"runbook": runbook, "params": params},
            headers={"X-CSRF-Token": employee.csrf},
        )
        # password-reset is not offered to a signed-in employee at all (404; the runner refuses it too)
        expected = (404, "not_found") if runbook == "password-reset" else (403, "forbidden")
        assert r.status_code == expected[0], (params, r.text)
        assert r.json()["error"]["code"] == expected[1] and r.json()["error"]["message"]
    assert portal.query("SELECT COUNT(*) FROM ticket")[0][0] == count
    # agent-only and unknown fixes: 404 on the page and the API
    for name in ("service-restart", "no-such-fix", "..%2F..%2Fetc", "account-status%00"):
        assert employee.get(f"/fix/{name}").status_code == 404
        r = employee.post("/api/v1/runs", json={"runbook": name, "params": {}}, headers={"X-CSRF-Token": employee.csrf})
        assert r.status_code in (404, 422), (name, r.status_code)
    assert portal.query("SELECT COUNT(*) FROM ticket")[0][0] == count
    assert count == before + 1
    # the same run over the JSON API is recorded as channel api (it was "portal": a tester's find)
    r = employee.post(
        "/api/v1/runs", json={"runbook": "account-status", "params": {}}, headers={"X-CSRF-Token": employee.csrf}
    )
    assert r.status_code == 201, r.text
    row = portal.query("SELECT channel FROM ticket WHERE id = :id", id=int(r.json()["ticket"][3:]))
    assert row == [("api",)], row


def _wait_done(client: SignedIn, number: str, timeout: float = 30.0) -> dict[str, Any]:
    """Follow the ticket's progress (the polling API) until it is final."""
    deadline = time.monotonic() + timeout
    while True:
        state = client.get(f"/api/v1/tickets/{number}/events").json()
        if state["done"] or time.monotonic() > deadline:
            return dict(state)
        time.sleep(0.1)


def _run_status(client: SignedIn) -> str:
    r = client.post("/fix/account-status", data={"csrf_token": client.csrf}, follow_redirects=False)
    assert r.status_code == 303, r.text
    number = str(r.headers["location"].rsplit("/", 1)[1])
    assert _wait_done(client, number)["done"]
    return number


def test_my_tickets_in_plain_words_for_the_owner_only(
    portal: PortalServer, signed_in: Callable[..., SignedIn], ldap_users: Any
) -> None:
    user, pw = ldap_users.create_user()
    me = sign_in(portal, user, pw)
    number = _run_status(me)
    page = me.get(f"/me/tickets/{number}")
    assert page.status_code == 200
    # a check changed nothing: "Done", not "Fixed" (a tester's find)
    assert number in page.text and ">Done<" in page.text and "Nothing more to do" in page.text
    assert ">Fixed<" not in page.text
    assert "Read the account" in page.text  # the step, by its title
    assert 'http-equiv="refresh"' not in page.text  # closed: no refresh, no script
    # requester_action_needed: a wrong current password closes the ticket with what to do next
    r = me.post(
        "/fix/password-change",
        data={
            "csrf_token": me.csrf,
            "old_password": "not-my-password-at-all",
            "new_password": "Qx-a-new-one 2026!",
            "new_password_again": "Qx-a-new-one 2026!",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    closed = r.headers["location"].rsplit("/", 1)[1]
    assert _wait_done(me, closed)["done"]
    page = me.get(f"/me/tickets/{closed}")
    assert "You need to act" in page.text and "correct what the message says" in page.text
    nl = me.get(f"/me/tickets/{closed}", headers={"Accept-Language": "nl"})
    assert "Actie van u nodig" in nl.text
    listing = me.get("/me/tickets")
    assert number in listing.text and closed in listing.text and "Done" in listing.text
    mine = me.get("/api/v1/tickets/mine").json()
    by_number = {t["number"]: t for t in mine}
    assert by_number[number]["outcome"]["code"] == "resolved"
    assert by_number[closed]["outcome"]["code"] == "requester_action_needed"
    assert by_number[closed]["outcome"]["next"]
    # someone else's ticket is answered like one that does not exist
    other = signed_in("employee")
    for path in (f"/me/tickets/{number}", f"/me/tickets/{number}/events", f"/api/v1/tickets/{number}/events"):
        assert other.get(path).status_code == 404, path
    assert number not in {t["number"] for t in other.get("/api/v1/tickets/mine").json()}
    assert me.get("/api/v1/tickets/FL-999999999/events").status_code == 404  # a number, no such ticket of yours
    for bad in ("FL-abc", "1 OR 1=1"):  # not a number (runner.ticketnumber): the same 422 as every surface
        r = me.get(f"/api/v1/tickets/{bad}/events")
        assert r.status_code == 422 and "is not a ticket number" in r.json()["error"]["message"], bad
    assert me.get("/api/v1/tickets/../../etc/passwd/events").status_code == 404  # no such address


def test_progress_events_after_a_position(portal: PortalServer, ldap_users: Any) -> None:
    user, pw = ldap_users.create_user()
    me = sign_in(portal, user, pw)
    number = _run_status(me)
    stream = me.get(f"/me/tickets/{number}/events")
    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    events = re.findall(r"id: (\d+)\nevent: (\w+)\ndata: (.*)\n", stream.text)
    kinds = [k for _, k, _ in events]
    assert kinds[-1] == "done" and "step" in kinds
    last = events[-1][0]
    again = me.get(f"/me/tickets/{number}/events", headers={"Last-Event-ID": last})
    assert [k for k in re.findall(r"event: (\w+)", again.text)] == ["done"]
    # a digit int() refuses ("²" is one for str.isdigit) was a 500: read as no position
    for odd in ("\xb2".encode("latin-1"), "\u0663".encode(), b"1\xb9"):
        whole = me.get(f"/me/tickets/{number}/events", headers={"Last-Event-ID": odd})
        assert whole.status_code == 200 and "event: done" in whole.text, whole.status_code
    polled = me.get(f"/api/v1/tickets/{number}/events", params={"after": 0}).json()
    assert polled["done"] is True and polled["steps"] and polled["outcome"]["code"] == "resolved"
    assert [s["status"] for s in polled["steps"]] == ["ok"] * len(polled["steps"])
    after = me.get(f"/api/v1/tickets/{number}/events", params={"after": polled["last_seq"]}).json()
    assert after["steps"] == [] and after["last_seq"] == polled["last_seq"]
    assert me.get(f"/api/v1/tickets/{number}/events", params={"after": -1}).status_code == 422
