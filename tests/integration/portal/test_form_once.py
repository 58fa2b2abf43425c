"""A run form sent twice starts one run (review of issue 8, item 4), over HTTP on the real portal.

Each run form carries a one-time ``form_token`` (``runner.formonce``): the second submit of
the same token in the same session answers with the first ticket; another session's
submit of that token is its own; a malformed token is refused before any ticket. A request
that fails after its ticket was written (here: the database refuses to change a queued
ticket, so the run cannot be handed over nor the ticket ended) keeps the token spent: the
resend answers with that ticket and opens no second one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from runner.ledger.tickets import number_of
from tests.integration.scaleout.fault_support import PrivateRedis
from tests.portal_support import PortalServer, SignedIn, sign_in

pytestmark = pytest.mark.both_databases

TOKEN = re.compile(r'name="form_token" value="([A-Za-z0-9_-]+)"')


def _tickets(portal: PortalServer) -> int:
    return int(portal.query("SELECT COUNT(*) FROM ticket")[0][0])


def _last_ticket(portal: PortalServer) -> str:
    return number_of(int(portal.query("SELECT MAX(id) FROM ticket")[0][0]))


@contextmanager
def _queued_tickets_stuck(portal: PortalServer) -> Iterator[None]:
    """While it lasts the database refuses any change to a queued ticket (a trigger): a new
    ticket is written, but ending it after a failed hand-over (``never_started``) fails too,
    so the request fails after its ticket exists (``LedgerError``, 503)."""
    message = "queued tickets may not change now"
    if portal.database_url.startswith("postgresql"):
        portal.execute(
            "CREATE FUNCTION refuse_queued_change() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{message}'; END $$"
        )
        portal.execute(
            "CREATE TRIGGER refuse_queued_change BEFORE UPDATE ON ticket FOR EACH ROW "
            "WHEN (OLD.state = 'queued') EXECUTE FUNCTION refuse_queued_change()"
        )
    else:
        portal.execute(
            "CREATE TRIGGER refuse_queued_change BEFORE UPDATE ON ticket WHEN OLD.state = 'queued' "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )
    try:
        yield
    finally:
        if portal.database_url.startswith("postgresql"):
            portal.execute("DROP TRIGGER refuse_queued_change ON ticket")
            portal.execute("DROP FUNCTION refuse_queued_change()")
        else:
            portal.execute("DROP TRIGGER refuse_queued_change")


def test_the_employee_form_sent_twice_opens_one_ticket(portal: PortalServer, signed_in: Any) -> None:
    employee: SignedIn = signed_in("employee")
    tokens = TOKEN.findall(employee.get("/fix/account-status").text)
    assert len(tokens) == 1 and len(set(TOKEN.findall(employee.get("/").text))) > 1  # one fresh token per form
    before = _tickets(portal)
    form = {"csrf_token": employee.csrf, "form_token": tokens[0]}
    first = employee.post("/fix/account-status", data=form, follow_redirects=False)
    again = employee.post("/fix/account-status", data=form, follow_redirects=False)
    assert first.status_code == again.status_code == 303, again.text[:400]
    assert first.headers["location"] == again.headers["location"]
    assert _tickets(portal) == before + 1
    # two submits at the same moment: still one ticket
    form = {"csrf_token": employee.csrf, "form_token": "Z" * 32}
    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(lambda _: employee.post("/fix/account-status", data=form, follow_redirects=False), range(2))
        )
    assert {a.status_code for a in answers} == {303}
    assert len({a.headers["location"] for a in answers}) == 1
    assert _tickets(portal) == before + 2
    # a new form (new token) is a new request
    fresh = TOKEN.findall(employee.get("/fix/account-status").text)[0]
    r = employee.post(
        "/fix/account-status", data={"csrf_token": employee.csrf, "form_token": fresh}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] != first.headers["location"]
    assert _tickets(portal) == before + 3
    # bound to the session: another employee session sending the same token runs its own
    other: SignedIn = signed_in("employee", address="192.0.2.77")
    r = other.post(
        "/fix/account-status", data={"csrf_token": other.csrf, "form_token": tokens[0]}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] != first.headers["location"]
    assert _tickets(portal) == before + 4
    # malformed tokens: refused, no ticket
    for bad in ("short", "x" * 65, "a b c d e f g h i j k", "<script>alert(1)</script>xxxx", "ü" * 20):
        r = employee.post(
            "/fix/account-status", data={"csrf_token": employee.csrf, "form_token": bad}, follow_redirects=False
        )
        assert r.status_code == 422, (bad, r.status_code)
    assert _tickets(portal) == before + 4


def test_the_agent_fix_sent_twice_unlocks_once(portal: PortalServer, signed_in: Any, ldap_users: Any) -> None:
    agent: SignedIn = signed_in("agent")
    login, _password = ldap_users.create_user()
    page = agent.get("/agent/account", params={"user": login, "directory": "corp"}).text
    token = TOKEN.findall(page)[0]
    before = _tickets(portal)
    form = {"csrf_token": agent.csrf, "form_token": token, "user": login, "directory": "corp", "reason": "caller asked"}
    first = agent.post("/agent/fixes/account-unlock", data=form, follow_redirects=False)
    again = agent.post("/agent/fixes/account-unlock", data=form, follow_redirects=False)
    assert first.status_code == again.status_code == 303, (first.text[:300], again.text[:300])
    assert first.headers["location"].split("?")[0] == again.headers["location"].split("?")[0]
    assert _tickets(portal) == before + 1
    opened = portal.query(
        "SELECT COUNT(*) FROM audit_event WHERE action = 'ticket.opened' "
        "AND runbook = 'account-unlock' AND target LIKE :pattern",
        pattern=f"%{login}%",
    )
    assert opened[0][0] <= 1
    # a refused submit (no reason) releases the token: the corrected form goes through once
    token = TOKEN.findall(agent.get("/agent/account", params={"user": login, "directory": "corp"}).text)[0]
    refused = agent.post(
        "/agent/fixes/account-unlock", data={**form, "form_token": token, "reason": ""}, follow_redirects=False
    )
    assert refused.status_code == 422
    ok = agent.post("/agent/fixes/account-unlock", data={**form, "form_token": token}, follow_redirects=False)
    assert ok.status_code == 303 and _tickets(portal) == before + 2


def test_a_resent_form_with_other_values_is_another_request(
    portal: PortalServer, signed_in: Any, ldap_users: Any
) -> None:
    """The form token sent again with another account answered 303 to the first ticket — the
    other account's — without a word, and nothing was done for the second (a tester's find).
    The token is bound to the values: other values are another request."""
    agent: SignedIn = signed_in("agent")
    first_user, _ = ldap_users.create_user()
    second_user, _ = ldap_users.create_user()
    token = TOKEN.findall(agent.get("/agent/account", params={"user": first_user, "directory": "corp"}).text)[0]
    form = {"csrf_token": agent.csrf, "form_token": token, "directory": "corp", "reason": "caller asked"}
    first = agent.post("/agent/fixes/account-unlock", data={**form, "user": first_user}, follow_redirects=False)
    other = agent.post("/agent/fixes/account-unlock", data={**form, "user": second_user}, follow_redirects=False)
    assert first.status_code == other.status_code == 303
    assert first.headers["location"].split("?")[0] != other.headers["location"].split("?")[0]
    subjects = {r[0] for r in portal.query("SELECT params FROM ticket ORDER BY id DESC LIMIT 2")}
    assert any(second_user in p for p in subjects) and any(first_user in p for p in subjects)


def test_the_api_idempotency_key_runs_once(portal: PortalServer, signed_in: Any) -> None:
    employee: SignedIn = signed_in("employee")
    before = _tickets(portal)
    headers = {"X-CSRF-Token": employee.csrf, "Idempotency-Key": "K" * 24}
    body = {"runbook": "account-status", "params": {}}
    first = employee.post("/api/v1/runs", json=body, headers=headers)
    again = employee.post("/api/v1/runs", json=body, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert first.json()["ticket"] == again.json()["ticket"] and again.json()["secrets"] == {}
    assert _tickets(portal) == before + 1
    r = employee.post("/api/v1/runs", json=body, headers={**headers, "Idempotency-Key": "bad key"})
    assert r.status_code == 422 and _tickets(portal) == before + 1
    # the message names the header the client sent, not the pages' "form token"
    message = r.json()["error"]["message"]
    assert "Idempotency-Key" in message and "form token" not in message, message
    nl = employee.post("/api/v1/runs", json=body, headers={**headers, "Idempotency-Key": "x", "Accept-Language": "nl"})
    assert nl.status_code == 422 and nl.json()["error"]["message"].startswith("De Idempotency-Key-header"), nl.text
    r = employee.post("/api/v1/runs", json=body, headers={"X-CSRF-Token": employee.csrf})  # no key: a new run
    assert r.status_code == 201 and _tickets(portal) == before + 2


def test_the_agent_fix_api_idempotency_key_runs_once_and_shows_the_password_once(
    portal: PortalServer, signed_in: Any, ldap_users: Any
) -> None:
    agent: SignedIn = signed_in("agent")
    user, _pw = ldap_users.create_user(given="Ida", sn="Empotent")
    before = _tickets(portal)
    headers = {"X-CSRF-Token": agent.csrf, "Idempotency-Key": "R" * 24}
    body = {"user": user, "directory": "corp", "reason": "caller verified by callback"}
    first = agent.post("/api/v1/fixes/password-reset", json=body, headers=headers)
    again = agent.post("/api/v1/fixes/password-reset", json=body, headers=headers)
    assert first.status_code == again.status_code == 200, again.text
    assert first.json()["state"] == "resolved" and first.json()["temporary_password"]
    assert again.json()["ticket"] == first.json()["ticket"] and again.json()["temporary_password"] is None
    assert _tickets(portal) == before + 1  # one reset, not two: the first password still works
    bad = agent.post("/api/v1/fixes/password-reset", json=body, headers={**headers, "Idempotency-Key": "no good"})
    assert bad.status_code == 422 and _tickets(portal) == before + 1
    # refused before any ticket (no reason): the key is given back, the corrected request runs
    key = {"X-CSRF-Token": agent.csrf, "Idempotency-Key": "U" * 24}
    refused = agent.post("/api/v1/fixes/account-unlock", json={**body, "reason": ""}, headers=key)
    assert refused.status_code == 422 and _tickets(portal) == before + 1
    ok = agent.post("/api/v1/fixes/account-unlock", json=body, headers=key)
    assert ok.status_code == 200 and _tickets(portal) == before + 2


def test_an_idempotency_key_sent_again_with_another_request_is_refused(
    portal: PortalServer, signed_in: Any, ldap_users: Any
) -> None:
    """The key answers for the request it was first sent with only: sent with another
    account, fix or reason it must not answer 200 with the first request's ticket (which
    reads as if the new request was done) nor start anything."""
    agent: SignedIn = signed_in("agent")
    first_user, _ = ldap_users.create_user(given="Ida", sn="Eerste")
    other_user, _ = ldap_users.create_user(given="Otto", sn="Ander")
    headers = {"X-CSRF-Token": agent.csrf, "Idempotency-Key": "Q" * 24}
    body = {"user": first_user, "directory": "corp", "reason": "caller verified by callback"}
    first = agent.post("/api/v1/fixes/account-unlock", json=body, headers=headers)
    assert first.status_code == 200, first.text
    before = _tickets(portal)
    for path, changed in (
        ("/api/v1/fixes/account-unlock", {**body, "user": other_user}),
        ("/api/v1/fixes/password-reset", body),
        ("/api/v1/fixes/account-unlock", {**body, "reason": "another reason"}),
    ):
        r = agent.post(path, json=changed, headers=headers)
        assert r.status_code == 422, (path, changed, r.status_code, r.text)
        assert r.json()["error"]["code"] == "invalid_input" and "Idempotency-Key" in r.json()["error"]["message"]
    assert _tickets(portal) == before
    again = agent.post("/api/v1/fixes/account-unlock", json=body, headers=headers)  # the same request: replayed
    assert again.status_code == 200 and again.json()["ticket"] == first.json()["ticket"], again.text
    employee: SignedIn = signed_in("employee")
    emp = {"X-CSRF-Token": employee.csrf, "Idempotency-Key": "E" * 24}
    ran = employee.post("/api/v1/runs", json={"runbook": "account-status", "params": {}}, headers=emp)
    assert ran.status_code == 201, ran.text
    other = employee.post("/api/v1/runs", json={"runbook": "password-change", "params": {}}, headers=emp)
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["error"]["message"], other.text
    assert _tickets(portal) == before + 1


@pytest.fixture
def broker_down(portal_with: Any, tmp_path: Path) -> Iterator[PortalServer]:
    """A portal that hands runs to its own Redis broker, which then stops: each hand-over
    fails after the ticket is written (``runner.runs.RunService.submit`` then ends it at once)."""
    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    try:
        portal = portal_with(broker_url=redis.url)
        redis.stop()
        yield portal
    finally:
        if redis.ping():
            redis.stop()


def test_an_agent_fix_that_fails_after_its_ticket_is_not_run_again_by_the_resend(
    broker_down: PortalServer, ldap_users: Any
) -> None:
    """The token is given back only by a failure before any ticket: a double click or a
    retry after the hand-over failed answers with the first ticket, never a second unlock."""
    portal = broker_down
    agent = sign_in(portal, "agent")
    login, _password = ldap_users.create_user()
    token = TOKEN.findall(agent.get("/agent/account", params={"user": login, "directory": "corp"}).text)[0]
    form = {"csrf_token": agent.csrf, "form_token": token, "user": login, "directory": "corp", "reason": "caller asked"}
    before = _tickets(portal)
    with _queued_tickets_stuck(portal):
        failed = agent.post("/agent/fixes/account-unlock", data=form, follow_redirects=False)
        assert failed.status_code == 503, failed.text[:300]
        assert _tickets(portal) == before + 1
        first = _last_ticket(portal)
        again = agent.post("/agent/fixes/account-unlock", data=form, follow_redirects=False)
        assert _tickets(portal) == before + 1  # no second ticket, no second unlock
        assert again.status_code == 303, again.text[:300]
        assert again.headers["location"] == f"/agent/tickets/{first}"
    shown = agent.get(again.headers["location"])
    assert shown.status_code == 200 and first in shown.text


def test_an_employee_form_that_failed_after_its_ticket_is_answered_with_it(broker_down: PortalServer) -> None:
    portal = broker_down
    employee = sign_in(portal, "employee")
    token = TOKEN.findall(employee.get("/fix/account-status").text)[0]
    form = {"csrf_token": employee.csrf, "form_token": token}
    before = _tickets(portal)
    with _queued_tickets_stuck(portal):
        failed = employee.post("/fix/account-status", data=form, follow_redirects=False)
        assert failed.status_code == 503, failed.text[:300]
        first = _last_ticket(portal)
        again = employee.post("/fix/account-status", data=form, follow_redirects=False)
        assert _tickets(portal) == before + 1  # no second ticket
        assert again.status_code == 303 and again.headers["location"] == f"/me/tickets/{first}", again.text[:300]


def test_an_idempotency_key_whose_request_failed_after_its_ticket_answers_with_it(
    broker_down: PortalServer, ldap_users: Any
) -> None:
    """The JSON API's Idempotency-Key follows the same rule (``portal.api.idempotency``)."""
    portal = broker_down
    employee, agent = sign_in(portal, "employee"), sign_in(portal, "agent")
    login, _password = ldap_users.create_user()
    cases = (
        (employee, "/api/v1/runs", {"runbook": "account-status", "params": {}}, "S" * 24, 201),
        (agent, "/api/v1/fixes/account-unlock", {"user": login, "directory": "corp", "reason": "asked"}, "T" * 24, 200),
    )
    for who, path, body, key, ok in cases:
        headers = {"X-CSRF-Token": who.csrf, "Idempotency-Key": key}
        before = _tickets(portal)
        with _queued_tickets_stuck(portal):
            failed = who.post(path, json=body, headers=headers)
            assert failed.status_code == 503, (path, failed.text)
            assert _tickets(portal) == before + 1
            first = _last_ticket(portal)
            again = who.post(path, json=body, headers=headers)
            assert _tickets(portal) == before + 1, path  # no second ticket
            assert again.status_code == ok, (path, again.text)
            assert again.json()["ticket"] == first and again.json()["state"] == "queued"
