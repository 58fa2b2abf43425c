"""What a JSON API request sends counts as sent, or the request is refused before anything
runs: a key given twice in one JSON object (a parser keeps the last one) is a 422 naming it,
with no ticket, no look-up and no change in the directory (``portal.api.once``)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.portal_support import PortalServer, SignedIn

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]


def _count(portal: PortalServer, sql: str, **params: Any) -> int:
    return int(portal.query(sql, **params)[0][0])


def _tickets(portal: PortalServer) -> int:
    return _count(portal, "SELECT COUNT(*) FROM ticket")


def _events(portal: PortalServer) -> int:
    return _count(portal, "SELECT COUNT(*) FROM audit_event")


def _post_raw(who: SignedIn, path: str, raw: str, lang: str = "en") -> httpx.Response:
    headers = {"X-CSRF-Token": who.csrf, "Content-Type": "application/json", "Accept-Language": lang}
    return who.post(path, content=raw.encode(), headers=headers)


def test_an_account_named_twice_in_a_fix_is_refused_not_the_last_one_unlocked(
    portal: PortalServer, signed_in: Any, ldap_users: Any
) -> None:
    agent: SignedIn = signed_in("agent")
    meant, _ = ldap_users.create_user()
    last, last_pw = ldap_users.create_user()
    ldap_users.lock(meant)
    ldap_users.lock(last)
    tickets, events = _tickets(portal), _events(portal)
    raw = (
        '{"reason": "caller on the phone", "directory": "corp", '
        f'"user": {json.dumps(meant)}, "user": {json.dumps(last)}}}'
    )
    r = _post_raw(agent, "/api/v1/fixes/account-unlock", raw)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == {
        "code": "invalid_input",
        "message": "user: is given more than once; give each field once",
    }
    nl = _post_raw(agent, "/api/v1/fixes/account-unlock", raw, lang="nl")
    assert nl.status_code == 422
    assert nl.json()["error"]["message"] == "user: is meer dan eens opgegeven; geef elk veld één keer op"
    # nothing ran: no ticket, no audited look-up, both accounts still locked
    assert _tickets(portal) == tickets and _events(portal) == events
    assert not ldap_users.bind_ok(last, last_pw)
    for user in (meant, last):
        assert ldap_users.read(user, "pwdAccountLockedTime").get("pwdAccountLockedTime")
    # the same body with the key once runs as asked
    once = {"reason": "caller on the phone", "directory": "corp", "user": last}
    ok = agent.post("/api/v1/fixes/account-unlock", json=once, headers={"X-CSRF-Token": agent.csrf})
    assert ok.status_code == 200 and ok.json()["state"] == "resolved", ok.text
    assert ldap_users.bind_ok(last, last_pw)


def test_a_repeated_key_anywhere_in_any_json_body_is_refused(portal: PortalServer, signed_in: Any) -> None:
    employee: SignedIn = signed_in("employee")
    tickets = _tickets(portal)
    tokens = _count(portal, "SELECT COUNT(*) FROM portal_api_token")
    bodies = [
        # a runbook parameter twice (not a name the API declares: shown as "?", it may be a secret)
        ("/api/v1/runs", '{"runbook": "printer-queue-clear", "params": {"printer": "office-1", "printer": "x"}}'),
        ("/api/v1/runs", '{"runbook": "account-status", "runbook": "password-change"}'),
        ("/api/v1/tokens", '{"label": "laptop", "label": "phone"}'),
    ]
    for path, raw in bodies:
        r = _post_raw(employee, path, raw)
        assert r.status_code == 422, (path, raw, r.text)
        assert "is given more than once; give each field once" in r.json()["error"]["message"]
    assert "printer" not in _post_raw(employee, *bodies[0]).json()["error"]["message"]
    assert _post_raw(employee, *bodies[1]).json()["error"]["message"].startswith("runbook: ")
    assert _tickets(portal) == tickets
    assert _count(portal, "SELECT COUNT(*) FROM portal_api_token") == tokens


def test_a_query_parameter_a_route_does_not_take_is_refused_not_dropped(
    portal: PortalServer, signed_in: Any, ldap_users: Any
) -> None:
    """/api/v1/kpi?sinse=... answered with the default 30 days, escalated?limit=1&limit=50
    with 50, and a query string on a fix's POST was ignored while the fix ran."""
    auditor: SignedIn = signed_in("auditor")
    agent: SignedIn = signed_in("agent")
    employee: SignedIn = signed_in("employee")
    refused = [
        (auditor, "/api/v1/kpi?sinse=2026-11-01", "sinse: is not a field of this request (did you mean since?)"),
        (auditor, "/api/v1/kpi?since=2026-11-01&since=2026-10-01", "since: is given more than once"),
        (agent, "/api/v1/tickets/escalated?limit=1&limit=50", "limit: is given more than once"),
        (agent, "/api/v1/tickets/escalated?lmit=1", "lmit: is not a field of this request (did you mean limit?)"),
        (employee, "/api/v1/tickets/mine?limit=1&limit=50", "limit: is given more than once"),
        (employee, "/api/v1/catalogue?q=printer&q=password", "q: is given more than once"),
        (employee, "/api/v1/me?as=someone", "?: is not a field of this request"),
    ]
    for who, path, text in refused:
        r = who.get(path)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["error"]["code"] == "invalid_input" and r.json()["error"]["message"].startswith(text), r.text
    nl = auditor.get("/api/v1/kpi?sinse=2026-11-01", headers={"Accept-Language": "nl"})
    assert nl.status_code == 422 and "sinse: is geen veld van dit verzoek" in nl.json()["error"]["message"]
    for path in ("/api/v1/kpi?since=2026-11-01", "/api/v1/kpi"):  # what the route takes still works
        assert auditor.get(path).status_code == 200
    assert agent.get("/api/v1/tickets/escalated?limit=1").json()["limit"] == 1

    meant, meant_pw = ldap_users.create_user()
    ldap_users.lock(meant)
    tickets, events = _tickets(portal), _events(portal)
    body = {"reason": "caller on the phone", "directory": "corp", "user": meant}
    r = agent.post("/api/v1/fixes/account-unlock?directory=ad", json=body, headers={"X-CSRF-Token": agent.csrf})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input", r.text
    assert _tickets(portal) == tickets and _events(portal) == events
    assert not ldap_users.bind_ok(meant, meant_pw)  # still locked: nothing ran


def test_an_auditor_filter_in_another_case_finds_what_its_lower_case_finds(
    portal: PortalServer, signed_in: Any
) -> None:
    """directory=CORP, runbook=Account-Status, category=Identity/Password answered 200 with no
    rows (stored values are lower-case) — an empty search that looked like a true one; then
    they were refused while actor matched in any case. Now they match as their lower case;
    a value no stored one can be is still refused."""
    auditor: SignedIn = signed_in("auditor")
    for upper, lower in (
        ("/api/v1/tickets?directory=CORP", "/api/v1/tickets?directory=corp"),
        ("/api/v1/audit/events?runbook=Account-Status", "/api/v1/audit/events?runbook=account-status"),
        ("/api/v1/audit/events?outcome=FAILURE", "/api/v1/audit/events?outcome=failure"),
        ("/api/v1/tickets?category=Identity/Password", "/api/v1/tickets?category=identity/password"),
    ):
        a, b = auditor.get(upper), auditor.get(lower)
        assert a.status_code == 200 and b.status_code == 200, (upper, a.text[:300])
        assert a.json()["count"] == b.json()["count"], upper
    nl = auditor.get("/api/v1/tickets?category=identity/", headers={"Accept-Language": "nl"})
    assert nl.status_code == 422 and "is geen categorie" in nl.json()["error"]["message"], nl.text
    assert auditor.get("/audit/tickets?directory=CORP").status_code == 200


def test_a_deeply_nested_json_body_is_never_a_500(portal: PortalServer, signed_in: Any) -> None:
    """The repeated-key check parsed every JSON body itself: 5,000 nested arrays on a route
    that takes no body (DELETE /api/v1/tokens/{id}, GET /api/v1/me) raised RecursionError: 500."""
    employee: SignedIn = signed_in("employee")
    deep = b"[" * 5000 + b"]" * 5000
    headers = {"X-CSRF-Token": employee.csrf, "Content-Type": "application/json"}
    assert employee.request("DELETE", "/api/v1/tokens/999999", content=deep, headers=headers).status_code == 404
    assert employee.request("GET", "/api/v1/me", content=deep, headers=headers).status_code == 200
    r = employee.post("/api/v1/tokens", content=deep, headers=headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request", r.text


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"],
)
def test_a_json_route_sent_another_kind_of_body_is_415_saying_so(
    portal: PortalServer, signed_in: Any, content_type: str
) -> None:
    """Valid JSON sent as text/plain (or a form) got 422 "request: must be a JSON object"."""
    agent: SignedIn = signed_in("agent")
    tickets = _tickets(portal)
    body = b'{"user": "alice", "directory": "corp", "reason": "checked by phone"}'
    for lang, words in (("en", "This request takes a JSON body"), ("nl", "Dit verzoek verwacht een JSON-body")):
        r = agent.post(
            "/api/v1/fixes/account-unlock",
            content=body,
            headers={"X-CSRF-Token": agent.csrf, "Content-Type": content_type, "Accept-Language": lang},
        )
        assert r.status_code == 415, (r.status_code, r.text)
        assert r.json()["error"]["code"] == "unsupported_media_type" and words in r.json()["error"]["message"]
    assert _tickets(portal) == tickets
    ok = agent.post(
        "/api/v1/runs",
        content=b'{"runbook": "account-status"}',
        headers={"X-CSRF-Token": agent.csrf, "Content-Type": "application/json; charset=utf-8"},
    )
    assert ok.status_code == 201, ok.text  # JSON with its parameters is JSON


def test_two_idempotency_keys_are_refused_not_one_chosen(portal: PortalServer, signed_in: Any) -> None:
    """Two ``Idempotency-Key`` headers: the first was used, and a retry carrying the other
    (a proxy may keep either) started the run again."""
    employee: SignedIn = signed_in("employee")
    tickets = _tickets(portal)
    r = employee.post(
        "/api/v1/runs",
        json={"runbook": "account-status"},
        headers=[("X-CSRF-Token", employee.csrf), ("Idempotency-Key", "i" * 20), ("Idempotency-Key", "j" * 20)],
    )
    assert r.status_code == 422 and "Idempotency-Key header is given more than once" in r.json()["error"]["message"]
    assert _tickets(portal) == tickets
