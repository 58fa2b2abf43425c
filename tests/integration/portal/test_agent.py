"""The agent desk on the real portal over the real lab slapd (docs/portal.md "Agents").

Look-ups, one-click unlock and reset with a required reason (ticket + audit), the
temporary password shown once, protected accounts, the escalated queue with keyset pages,
and refusals: hostile input, wrong role, out-of-scope directory, forged CSRF — each
asserted on the directory's state and on the ticket / audit rows (nothing ran).
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
import time
from typing import Any

import httpx
import pytest

from tests.integration.directory.helpers import lab_users
from tests.portal_support import PortalServer, SignedIn

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

REASON = "Caller verified by phone, ticket INC-42"
HOSTILE_NAMES = [
    "*)(uid=*",
    "alice)(|(uid=*",
    "a\x00b",
    "\u202eadmin",
    "x" * 10_240,
    "alice@example.test",  # qualified names could route elsewhere: agents give a bare name + directory
    "EXAMPLE\\alice",
    "../alice",
    "al ice",
    "",
]
HOSTILE_REASONS = [
    "",
    "   ",
    "\u2800",  # braille blank, Hangul filler, a combining mark alone: they show nothing (a tester's finds)
    "\u115f\u3164",
    "\u034f",
    "r" * 501,
    "x\x00y",
    "safe\u202eevil",
    "two\nlines",
    "tab\there",
    "\u200bhidden",
    "z" * 10_240,
    "y" * 2_001,
]


def _tickets(portal: PortalServer) -> int:
    return int(portal.query("SELECT COUNT(*) FROM ticket")[0][0])


def _events(portal: PortalServer, action: str) -> int:
    return int(portal.query("SELECT COUNT(*) FROM audit_event WHERE action = :action", action=action)[0][0])


def _api(agent: SignedIn, runbook: str, body: dict[str, Any]) -> httpx.Response:
    return agent.post(f"/api/v1/fixes/{runbook}", json=body, headers={"X-CSRF-Token": agent.csrf})


@pytest.fixture
def agent(signed_in: Any) -> SignedIn:
    s: SignedIn = signed_in("agent")
    return s


def test_look_up_a_locked_account_in_plain_words_en_and_nl(
    portal: PortalServer, agent: SignedIn, ldap_users: Any
) -> None:
    user, _pw = ldap_users.create_user(given="Lena", sn="Locked")
    ldap_users.lock(user)
    before = _events(portal, "agent.account_lookup")
    r = agent.get(f"/api/v1/directory/users/corp/{user}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["exists"] and body["locked"] and body["lock_reason"] == "failures"
    assert not body["protected"] and body["fixes"][0] == "account-unlock"
    assert body["name"] == "Lena Locked"
    assert _events(portal, "agent.account_lookup") == before + 1
    row = portal.query(
        "SELECT actor, target, outcome, client_ip FROM audit_event"
        " WHERE action='agent.account_lookup' ORDER BY seq DESC LIMIT 1"
    )[0]
    assert row[0].startswith("demo-agent") and row[1] == f"corp:{user}" and row[2] == "success" and row[3]

    page = agent.get("/agent/account", params={"directory": "corp", "user": user})
    assert page.status_code == 200
    assert "Locked after too many failed sign-ins." in page.text
    assert 'action="/agent/fixes/account-unlock"' in page.text and 'name="reason"' in page.text
    nl = agent.get("/agent/account", params={"directory": "corp", "user": user}, headers={"Accept-Language": "nl"})
    assert "Geblokkeerd na te veel mislukte aanmeldingen." in nl.text
    missing = agent.get("/api/v1/directory/users/corp/nobody-" + user)
    assert missing.status_code == 200 and missing.json()["exists"] is False and missing.json()["fixes"] == []


def test_unlock_with_a_reason_goes_into_the_ticket_and_the_audit(
    portal: PortalServer, agent: SignedIn, ldap_users: Any
) -> None:
    user, pw = ldap_users.create_user()
    ldap_users.lock(user)
    r = _api(agent, "account-unlock", {"reason": f"  {REASON}  ", "user": user, "directory": "corp"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["state"] == "resolved" and answer["temporary_password"] is None
    assert ldap_users.bind_ok(user, pw)  # really unlocked
    row = portal.query(
        "SELECT work_note, requester, opened_by, channel, directory FROM ticket WHERE id = :id",
        id=int(answer["ticket"].removeprefix("FL-")),
    )[0]
    assert row[0] == REASON and row[1] == f"{user}@example.org" and row[2].startswith("demo-agent")
    assert row[3] == "api" and row[4] == "corp"
    opened = "SELECT detail FROM audit_event WHERE action='ticket.opened' AND ticket=:t"
    detail = json.loads(portal.query(opened, t=answer["ticket"])[0][0])
    assert detail["work_note"] == REASON
    page = agent.get(f"/agent/tickets/{answer['ticket']}")
    assert page.status_code == 200 and REASON in page.text and "Resolved" in page.text


def test_reset_shows_the_temporary_password_once_and_it_must_be_changed(
    portal: PortalServer, agent: SignedIn, ldap_users: Any
) -> None:
    user, old = ldap_users.create_user()
    r = agent.post(
        "/agent/fixes/password-reset",
        data={"csrf_token": agent.csrf, "reason": REASON, "user": user, "directory": "corp"},
    )
    assert r.status_code == 303, r.text[:500]
    location = r.headers["location"]
    assert re.fullmatch(r"/agent/tickets/FL-\d+\?once=[A-Za-z0-9_-]+", location)
    number = location.split("/")[-1].split("?")[0]
    shown = agent.get(location)
    assert shown.status_code == 200 and "no-store" in shown.headers["cache-control"]
    found = re.search(r'id="temporary-password" type="text" readonly value="([^"]+)"', shown.text)
    assert found, shown.text[:2000]
    temporary = html.unescape(found.group(1))
    assert not ldap_users.bind_ok(user, old) and ldap_users.bind_ok(user, temporary)
    assert ldap_users.conn.run("account_status", {"user": user}, timeout=10)["must_change"] is True
    again = agent.get(location)  # a reload shows it no more
    assert temporary not in again.text and "shown once" in again.text
    assert temporary not in agent.get(f"/agent/tickets/{number}").text
    assert temporary not in agent.get("/api/v1/tickets/escalated").text
    assert temporary.encode() not in portal.stored_bytes()
    other = agent.get(location.replace("once=", "once=x"))
    assert temporary not in other.text
    note = portal.query("SELECT work_note FROM ticket WHERE id = :id", id=int(number.removeprefix("FL-")))[0][0]
    assert note == REASON


def test_a_head_request_does_not_take_the_temporary_password(
    portal: PortalServer, agent: SignedIn, ldap_users: Any
) -> None:
    """HEAD is answered like GET without a body (05afb1d): a HEAD of the page that shows the
    password once (a link checker, ``curl -I``, a browser's prefetch) must not spend it, or
    the password is gone unseen."""
    user, _old = ldap_users.create_user()
    r = agent.post(
        "/agent/fixes/password-reset",
        data={"csrf_token": agent.csrf, "reason": REASON, "user": user, "directory": "corp"},
    )
    assert r.status_code == 303, r.text[:500]
    location = r.headers["location"]
    probe = agent.head(location)
    assert probe.status_code == 200 and probe.content == b""
    shown = agent.get(location)
    found = re.search(r'id="temporary-password" type="text" readonly value="([^"]+)"', shown.text)
    assert found, shown.text[:2000]
    assert ldap_users.bind_ok(user, html.unescape(found.group(1)))
    assert "shown once" in agent.get(location).text  # and still only once


def test_other_requests_are_answered_while_an_agent_fix_runs(portal: PortalServer, agent: SignedIn) -> None:
    """The desk's fix form waits for the run; it must wait off the event loop. It ran the look-up
    and the run on it, so every other request to the process stalled until the fix was done (a
    restart with its settle check: about 2 s)."""
    other = portal.client()
    finished: list[float] = []

    def fix() -> None:
        r = agent.post(
            "/agent/fixes/service-restart",
            data={"csrf_token": agent.csrf, "reason": REASON, "choice": "lab-daemon"},
        )
        finished.append(time.monotonic())
        assert r.status_code == 303, r.text[:500]

    runner = threading.Thread(target=fix)
    runner.start()
    time.sleep(0.3)
    asked = time.monotonic()
    answered = other.get("/signin")
    got = time.monotonic()
    runner.join()
    other.close()
    assert answered.status_code == 200
    assert finished and got < finished[0] - 0.3, (got - asked, finished[0] - asked)


def test_api_reset_answers_the_password_once(portal: PortalServer, agent: SignedIn, ldap_users: Any) -> None:
    user, _ = ldap_users.create_user()
    r = _api(agent, "password-reset", {"reason": REASON, "user": user, "directory": "corp"})
    assert r.status_code == 200, r.text
    temporary = r.json()["temporary_password"]
    assert temporary and ldap_users.bind_ok(user, temporary)
    assert temporary.encode() not in portal.stored_bytes()
    # a password given by the agent is not a field of a one-click fix
    r = _api(agent, "password-reset", {"reason": REASON, "user": user, "directory": "corp", "new_password": "x"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize("reason", HOSTILE_REASONS, ids=lambda v: repr(v)[:20])
def test_a_missing_or_hostile_reason_changes_nothing(
    portal: PortalServer, agent: SignedIn, ldap_users: Any, reason: str
) -> None:
    user, pw = ldap_users.create_user()
    ldap_users.lock(user)
    tickets = _tickets(portal)
    r = _api(agent, "account-unlock", {"reason": reason, "user": user, "directory": "corp"})
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert message
    assert not reason.strip() or reason.strip()[:50] not in message
    page = agent.post(
        "/agent/fixes/account-unlock",
        data={"csrf_token": agent.csrf, "reason": reason, "user": user, "directory": "corp"},
    )
    assert page.status_code == 422 and 'role="alert"' in page.text
    assert _tickets(portal) == tickets
    assert not ldap_users.bind_ok(user, pw)  # still locked
    missing = _api(agent, "account-unlock", {"user": user, "directory": "corp"})
    assert missing.status_code == 422 and "reason" in missing.json()["error"]["message"]
    if len(reason.strip()) > 500:  # one limit, one message, however long (2,000 was a second limit)
        assert "at most 500 characters" in message, message


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda v: repr(v)[:20])
def test_hostile_account_names_never_reach_the_directory(portal: PortalServer, agent: SignedIn, name: str) -> None:
    tickets, lookups = _tickets(portal), _events(portal, "agent.account_lookup")
    r = _api(agent, "account-unlock", {"reason": REASON, "user": name, "directory": "corp"})
    assert r.status_code == 422, r.text
    assert "letters, digits" in r.json()["error"]["message"] or "at most" in r.json()["error"]["message"]
    page = agent.get("/agent/account", params={"directory": "corp", "user": name})
    assert page.status_code == 422 and 'role="alert"' in page.text
    if name and "/" not in name and "\x00" not in name:
        api = agent.get(f"/api/v1/directory/users/corp/{name}")
        assert api.status_code == 422, api.text
    assert _tickets(portal) == tickets
    assert _events(portal, "agent.account_lookup") == lookups


@pytest.mark.parametrize("runbook", ["no-such-fix", "account-status", "password-change", "..%2Fetc", "ACCOUNT-UNLOCK"])
def test_unknown_fixes_are_404(portal: PortalServer, agent: SignedIn, runbook: str) -> None:
    tickets = _tickets(portal)
    r = _api(agent, runbook, {"reason": REASON, "user": "alice", "directory": "corp"})
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"
    page = agent.post(
        f"/agent/fixes/{runbook}",
        data={"csrf_token": agent.csrf, "reason": REASON, "user": "alice", "directory": "corp"},
    )
    assert page.status_code == 404 and "<html" in page.text
    assert _tickets(portal) == tickets


@pytest.mark.parametrize(
    "body",
    [
        {"reason": 5, "user": "alice", "directory": "corp"},
        {"reason": REASON, "user": ["alice"], "directory": "corp"},
        {"reason": REASON, "user": "alice", "directory": {"key": "corp"}},
        {"reason": REASON, "user": "alice", "directory": "corp", "extra": "x"},
        {"reason": None, "user": "alice", "directory": "corp"},
        [REASON],
        "reason",
    ],
    ids=range(7),
)
def test_wrong_types_are_422_and_run_nothing(portal: PortalServer, agent: SignedIn, body: Any) -> None:
    tickets, lookups = _tickets(portal), _events(portal, "agent.account_lookup")
    r = _api(agent, "account-unlock", body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input", r.text
    assert REASON not in r.json()["error"]["message"]
    assert _tickets(portal) == tickets and _events(portal, "agent.account_lookup") == lookups


@pytest.mark.parametrize("choice", ["print-01", "../office-1", "office-1; rm -rf /", "OFFICE-1", "", "x" * 10_240])
def test_host_fixes_take_only_inventory_choices(portal: PortalServer, agent: SignedIn, choice: str) -> None:
    tickets = _tickets(portal)
    r = _api(agent, "printer-queue-clear", {"reason": REASON, "choice": choice})
    assert r.status_code == 422, r.text
    assert _tickets(portal) == tickets


@pytest.mark.parametrize(
    ("runbook", "extra", "field"),
    [
        ("printer-queue-clear", {"choice": "office-1", "user": "alice", "directory": "corp"}, "user"),
        ("disk-cleanup", {"choice": "app-cache", "directory": "corp"}, "directory"),
        ("account-unlock", {"user": "NEW", "directory": "corp", "on_behalf_of": "bob"}, "on_behalf_of"),
        ("password-reset", {"user": "NEW", "directory": "corp", "choice": "office-1"}, "choice"),
    ],
)
def test_a_field_the_fix_does_not_use_is_refused_not_dropped(
    portal: PortalServer, agent: SignedIn, ldap_users: Any, runbook: str, extra: dict[str, str], field: str
) -> None:
    """A printer fix sent with user=alice ran in the agent's own name (the user dropped), an
    unlock sent with on_behalf_of=bob ran without it: each answered as if done as asked."""
    if extra.get("user") == "NEW":  # a throwaway account: without the fix the run goes ahead
        extra = {**extra, "user": ldap_users.create_user()[0]}
    tickets, lookups = _tickets(portal), _events(portal, "agent.account_lookup")
    r = _api(agent, runbook, {"reason": REASON, **extra})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input", r.text
    assert field in r.json()["error"]["message"], r.text
    assert _tickets(portal) == tickets and _events(portal, "agent.account_lookup") == lookups
    nl = agent.post(
        f"/api/v1/fixes/{runbook}",
        json={"reason": REASON, **extra},
        headers={"X-CSRF-Token": agent.csrf, "Accept-Language": "nl"},
    )
    assert nl.status_code == 422 and "wordt niet gebruikt" in nl.json()["error"]["message"], nl.text
    # the desk's form route dropped them too (a hand-made POST): now the page says which field
    for lang, words in (("en", "is not used by this fix"), ("nl", "wordt niet gebruikt door deze oplossing")):
        page = agent.post(
            f"/agent/fixes/{runbook}",
            data={"csrf_token": agent.csrf, "reason": REASON, "on_behalf_of": "", **extra},
            headers={"Accept-Language": lang},
        )
        assert page.status_code == 422, (lang, page.status_code, page.text[:500])
        assert 'role="alert"' in page.text and f"{field}: {words}" in page.text, page.text[-3000:]
        assert 'name="reason"' in page.text  # the form is still there to correct and send
    assert _tickets(portal) == tickets


def test_the_desk_forms_own_empty_fields_are_not_refused(portal: PortalServer, agent: SignedIn) -> None:
    """The host forms send on_behalf_of even when empty; an empty field of the other kind is no
    value either: the refusal is about the missing reason, not about the empty field."""
    for runbook, data in (
        ("printer-queue-clear", {"choice": "office-1", "on_behalf_of": ""}),
        ("account-unlock", {"user": "nobody-here", "directory": "corp", "on_behalf_of": "", "choice": ""}),
    ):
        page = agent.post(f"/agent/fixes/{runbook}", data={"csrf_token": agent.csrf, "reason": "", **data})
        assert page.status_code == 422 and "not used by this fix" not in page.text, page.text[-2000:]
        assert "reason must not be empty" in page.text.lower(), page.text[-2000:]


def test_forged_csrf_changes_nothing(portal: PortalServer, agent: SignedIn, ldap_users: Any) -> None:
    user, pw = ldap_users.create_user()
    ldap_users.lock(user)
    tickets = _tickets(portal)
    for token in ("", "0" * 64, agent.csrf[:-1] + ("0" if agent.csrf[-1] != "0" else "1")):
        r = agent.post(
            "/agent/fixes/account-unlock",
            data={"csrf_token": token, "reason": REASON, "user": user, "directory": "corp"},
        )
        assert r.status_code == 403 and "did not come from this site" in r.text
        r = agent.post(
            "/api/v1/fixes/account-unlock",
            json={"reason": REASON, "user": user, "directory": "corp"},
            headers={"X-CSRF-Token": token},
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    assert _tickets(portal) == tickets and not ldap_users.bind_ok(user, pw)


def test_roles_and_scope(portal: PortalServer, signed_in: Any, agent: SignedIn, ldap_users: Any) -> None:
    user, pw = ldap_users.create_user()
    ldap_users.lock(user)
    tickets, lookups = _tickets(portal), _events(portal, "agent.account_lookup")
    for role in ("employee", "auditor"):
        who: SignedIn = signed_in(role)
        r = who.get(f"/api/v1/directory/users/corp/{user}")
        assert r.status_code == 403 and "agent role" in r.json()["error"]["message"]
        r = who.post(
            "/api/v1/fixes/account-unlock",
            json={"reason": REASON, "user": user, "directory": "corp"},
            headers={"X-CSRF-Token": who.csrf},
        )
        assert r.status_code == 403 and "agent role" in r.json()["error"]["message"]
        assert who.get("/agent").status_code == 403
        assert who.get("/api/v1/tickets/escalated").status_code == 403
    assert httpx.get(portal.base_url + f"/api/v1/directory/users/corp/{user}").status_code == 401
    # the lab agent signs in from corp and has no agent_scopes: corp only
    r = agent.get(f"/api/v1/directory/users/ad/{user}")
    assert (
        r.status_code == 403
        and r.json()["error"]["message"] == "You may act on accounts in these directories only: corp."
    )
    r = _api(agent, "account-unlock", {"reason": REASON, "user": user, "directory": "ad"})
    assert r.status_code == 403
    assert [d["key"] for d in agent.get("/api/v1/directories").json()] == ["corp"]
    r = agent.get(f"/api/v1/directory/users/nowhere/{user}")
    assert r.status_code == 422
    # the catalogue's run route is not a back door around the reason and the scope
    for params in ({"user": user}, {"user": user, "directory": "corp"}, {"user": f"{user}@example.test"}):
        r = agent.post(
            "/api/v1/runs", json={"runbook": "account-unlock", "params": params}, headers={"X-CSRF-Token": agent.csrf}
        )
        assert r.status_code == 403, r.text
        assert "agent desk" in r.json()["error"]["message"]
    assert _tickets(portal) == tickets and _events(portal, "agent.account_lookup") == lookups
    assert not ldap_users.bind_ok(user, pw)


def test_service_desk_fixes_need_the_desk_and_a_reason(portal: PortalServer, agent: SignedIn) -> None:
    """A service restart or a disk cleanup ran from the catalogue (home page form, or
    ``POST /api/v1/runs``) with no reason on the ticket (found by a tester). They are run from
    the agent desk only; the home page links there instead of offering a form."""
    tickets = _tickets(portal)
    for runbook, params in (
        ("service-restart", {"service": "lab-daemon"}),
        ("disk-cleanup", {"location": "app-cache"}),
    ):
        r = agent.post(
            "/api/v1/runs", json={"runbook": runbook, "params": params}, headers={"X-CSRF-Token": agent.csrf}
        )
        assert r.status_code == 403, r.text
        assert r.json()["error"]["message"].startswith("This fix is for the service desk"), r.text
        form = {"csrf_token": agent.csrf, **params}
        page = agent.post(f"/fix/{runbook}", data=form)
        assert page.status_code == 403 and "agent desk" in page.text, page.text[:300]
        nl = agent.post(
            "/api/v1/runs",
            json={"runbook": runbook, "params": params},
            headers={"X-CSRF-Token": agent.csrf, "Accept-Language": "nl"},
        )
        assert nl.json()["error"]["message"].startswith("Deze oplossing is voor de servicedesk"), nl.text
    assert _tickets(portal) == tickets  # nothing ran
    home = agent.get("/")
    assert 'action="/fix/service-restart"' not in home.text and 'href="/agent#fix-service-restart-h"' in home.text
    entry = next(e for e in agent.get("/api/v1/catalogue").json() if e["name"] == "disk-cleanup")
    assert entry["desk"] is True


def test_protected_accounts_get_no_fix(portal: PortalServer, agent: SignedIn) -> None:
    assert "root-admin" in lab_users("openldap")
    view = agent.get("/api/v1/directory/users/corp/root-admin").json()
    assert view["protected"] is True and view["fixes"] == []
    page = agent.get("/agent/account", params={"directory": "corp", "user": "root-admin"})
    assert "Protected — not available for one-click fixes." in page.text
    assert "/agent/fixes/" not in page.text
    tickets, refused = _tickets(portal), _events(portal, "agent.fix_refused")
    for fix in ("account-unlock", "password-reset"):
        r = _api(agent, fix, {"reason": REASON, "user": "root-admin", "directory": "corp"})
        assert r.status_code == 403 and "protected" in r.json()["error"]["message"]
    assert _tickets(portal) == tickets and _events(portal, "agent.fix_refused") == refused + 2


@pytest.mark.parametrize("typed", ["demo-agent", "DEMO-AGENT"])
def test_the_agents_own_account_offers_no_fix(portal: PortalServer, agent: SignedIn, typed: str) -> None:
    """The desk offered reset and unlock on the agent's own account, and both were refused on
    submit: the page says at once what to do instead (en and nl)."""
    view = agent.get(f"/api/v1/directory/users/corp/{typed}").json()
    assert view["own_account"] is True and view["fixes"] == []
    page = agent.get("/agent/account", params={"directory": "corp", "user": typed})
    assert "This is your own account." in page.text and "/agent/fixes/" not in page.text
    dutch = agent.get("/agent/account", params={"directory": "corp", "user": typed}, headers={"Accept-Language": "nl"})
    assert "Dit is uw eigen account." in dutch.text
    other = agent.get("/api/v1/directory/users/corp/demo-employee").json()
    assert other["own_account"] is False and other["fixes"]


def test_escalated_queue_newest_first_with_everything_gathered(
    portal: PortalServer, agent: SignedIn, ldap_users: Any
) -> None:
    numbers = []
    for _ in range(2):
        user, _pw = ldap_users.create_user()
        ldap_users.set(user, pwdAccountLockedTime="000001010000Z")  # locked by an administrator: not for automation
        r = _api(agent, "account-unlock", {"reason": f"{REASON} ({user})", "user": user, "directory": "corp"})
        assert r.status_code == 200 and r.json()["state"] == "escalated", r.text
        numbers.append(r.json()["ticket"])
    first = agent.get("/api/v1/tickets/escalated", params={"limit": 1}).json()
    assert [t["number"] for t in first["items"]] == [numbers[1]]
    item = first["items"][0]
    assert item["work_note"].startswith(REASON) and item["directory"] == "corp"
    assert item["opened_by"].startswith("demo-agent") and item["requester"].endswith("@example.org")
    assert item["params"]["user"] and item["reason"] and item["steps"]
    assert item["steps"][0]["action"] == "account_status" and isinstance(item["steps"][0]["outputs"], dict)
    second = agent.get("/api/v1/tickets/escalated", params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert [t["number"] for t in second["items"]] == [numbers[0]]
    bad = agent.get("/api/v1/tickets/escalated", params={"cursor": "bm90LWEtY3Vyc29y"})
    assert bad.status_code == 422
    # JSON that is not an object, or a key past a database integer: 422, not a 500 (a tester's finds)
    scope = json.loads(base64.urlsafe_b64decode(first["next_cursor"] + "=" * (-len(first["next_cursor"]) % 4)))
    for value in ([1], 1, None, "x", {**scope, "a": 2**63}, {**scope, "a": 0}, {**scope, "f": "0" * 16}):
        cursor = base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
        for path in ("/api/v1/tickets/escalated", "/agent/escalated"):
            r = agent.get(path, params={"cursor": cursor})
            assert r.status_code == 422, (path, value, r.status_code, r.text[:200])
    page = agent.get("/agent/escalated", params={"limit": 1})
    assert page.status_code == 200 and numbers[1] in page.text and 'rel="next"' in page.text


def test_agents_see_tickets_of_their_directories_and_of_none(portal: PortalServer, agent: SignedIn) -> None:
    from tests.seed import portal_ledger

    led = portal_ledger(portal.data_dir, portal.database_url)
    try:
        ad = led.ticket(state="escalated", directory="ad", subject="ad-only", requester="bob@example.test")
        host = led.ticket(state="escalated", directory=None, subject="printer", runbook="printer-queue-clear")
    finally:
        led.engine.dispose()
    ad_number, host_number = f"FL-{ad:06d}", f"FL-{host:06d}"
    seen = [t["number"] for t in agent.get("/api/v1/tickets/escalated", params={"limit": 200}).json()["items"]]
    assert host_number in seen and ad_number not in seen  # the lab agent acts on corp only
    assert agent.get(f"/agent/tickets/{host_number}").status_code == 200
    assert agent.get(f"/agent/tickets/{ad_number}").status_code == 404
    assert agent.get("/agent/tickets/FL-12ab").status_code == 422  # not a ticket number (runner.ticketnumber)


def test_agent_clears_a_printer_queue_chosen_from_the_inventory(portal: PortalServer, agent: SignedIn) -> None:
    from tests.integration.conftest import start_lab
    from tests.integration.hosts.helpers import queue_jobs, submit_held

    start_lab("sshd", "cups")
    submit_held("office-2", 2, title="fl-agent")
    assert len(queue_jobs("office-2")) >= 2
    desk = agent.get("/agent")
    assert '<option value="office-2">' in desk.text  # inventory choices in a list: no host name is ever typed
    assert 'value="print-01"' not in desk.text
    r = agent.post(
        "/agent/fixes/printer-queue-clear",
        data={"csrf_token": agent.csrf, "reason": REASON, "choice": "office-2", "on_behalf_of": "alice@example.org"},
    )
    assert r.status_code == 303, r.text[:500]
    number = r.headers["location"].removeprefix("/agent/tickets/")
    assert "once=" not in number
    assert queue_jobs("office-2") == []
    row = portal.query(
        "SELECT state, requester, opened_by, work_note, params FROM ticket WHERE id = :id",
        id=int(number.removeprefix("FL-")),
    )[0]
    assert row[0] == "resolved" and row[1] == "alice@example.org" and row[2].startswith("demo-agent")
    assert row[3] == REASON and json.loads(row[4]) == {"printer": "office-2"}
    for behalf in ("alice)(uid=*", "a\u202eb", "x" * 300):
        r = _api(agent, "printer-queue-clear", {"reason": REASON, "choice": "office-2", "on_behalf_of": behalf})
        assert r.status_code == 422, r.text


def test_an_agent_with_both_directories_in_scope_acts_on_ad(portal_with: Any) -> None:
    from tests.integration.conftest import start_lab
    from tests.integration.directory.helpers import FLAVORS, Directory, _admin, connector
    from tests.portal_support import sign_in

    start_lab("samba")
    server = portal_with(agent_scopes={"corp": ["corp", "ad"]})
    who = sign_in(server, "agent")
    admin, ldap_server = _admin("active_directory")
    ad = Directory(
        "active_directory", "ad", connector("ad"), admin, ldap_server, FLAVORS["active_directory"][1], "sAMAccountName"
    )
    try:
        user, pw = ad.create_user()
        ad.lock(user)
        r = _api(who, "account-unlock", {"reason": REASON, "user": user, "directory": "ad"})
        assert r.status_code == 200 and r.json()["state"] == "resolved", r.text
        assert ad.bind_ok(user, pw)
        row = server.query(
            "SELECT requester, directory, work_note FROM ticket WHERE id = :id", id=int(r.json()["ticket"][3:])
        )
        assert row == [(f"{user}@example.test", "ad", REASON)]
        assert [d["key"] for d in who.get("/api/v1/directories").json()] == ["corp", "ad"]
        assert "alice" in lab_users("active_directory")
        view = who.get("/api/v1/directory/users/ad/alice").json()
        assert view["exists"] is True and view["directory"] == "ad" and view["protected"] is False
        assert who.get("/api/v1/directory/users/ad/root-admin").json()["protected"] is True
        page = who.get("/agent/account", params={"directory": "ad", "user": "gone"})
        assert "Expired: the account&#39;s end date has passed." in page.text or "Expired" in page.text
        # "password never expires": the DC would not enforce a must-change reset, so the desk
        # holds the reset back instead of offering one that only ever escalated (a tester's find)
        never, _pw2 = ad.create_user(userAccountControl=str(512 | 0x10000))
        view = who.get(f"/api/v1/directory/users/ad/{never}").json()
        assert "password-reset" not in view["fixes"] and "account-unlock" in view["fixes"], view
        assert [w["fix"] for w in view["withheld"]] == ["password-reset"], view
        assert view["withheld"][0]["reason"] == "must_change_not_enforced", view
        assert "would not make the person change" in view["withheld"][0]["message"], view
        asked = _api(who, "password-reset", {"reason": REASON, "user": never, "directory": "ad"})  # asked anyway
        assert asked.status_code == 200 and asked.json()["state"] == "escalated", asked.text
        assert ad.bind_ok(never, _pw2)  # nothing was written
    finally:
        who.client.close()
        ad.conn.close()
        ad.cleanup()
        admin.unbind()


def test_agent_restarts_a_service_over_the_lab_sshd(portal: PortalServer, agent: SignedIn) -> None:
    from tests.integration.conftest import start_lab
    from tests.integration.hosts.helpers import SVC_LAB, as_svc, service_pid

    start_lab("sshd")
    as_svc(str(SVC_LAB / "bin" / "svcctl"), "start", "labd")
    before = service_pid("labd")
    r = _api(agent, "service-restart", {"reason": REASON, "choice": "lab-daemon"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "resolved", r.json()
    after = service_pid("labd")
    assert after is not None and after != before
    number = r.json()["ticket"]
    row = portal.query("SELECT requester, work_note FROM ticket WHERE id = :id", id=int(number.removeprefix("FL-")))[0]
    assert row == (agent.login + "@example.org", REASON)
    # a service the inventory does not offer for this fix is refused before anything runs
    tickets = _tickets(portal)
    for choice in ("labd", "office-1", "win-hang; reboot"):
        assert _api(agent, "service-restart", {"reason": REASON, "choice": choice}).status_code == 422
    assert _tickets(portal) == tickets


def test_refusals_on_the_pages_are_in_dutch_too(portal: PortalServer, agent: SignedIn, ldap_users: Any) -> None:
    user, _pw = ldap_users.create_user()
    nl = {"Accept-Language": "nl"}
    r = agent.post(
        "/agent/fixes/account-unlock",
        data={"csrf_token": agent.csrf, "reason": "", "user": user, "directory": "corp"},
        headers=nl,
    )
    assert r.status_code == 422 and "De reden mag niet leeg zijn" in r.text
    r = agent.get("/agent/account", params={"directory": "corp", "user": "*)(uid=*"}, headers=nl)
    assert r.status_code == 422 and "De accountnaam mag alleen letters" in r.text
    r = agent.post(
        "/api/v1/fixes/account-unlock",
        json={"reason": "a\u202eb", "user": user, "directory": "corp"},
        headers={**nl, "X-CSRF-Token": agent.csrf},
    )
    assert r.status_code == 422 and r.json()["error"]["message"] == (
        "De reden bevat stuur-, onzichtbare of tekstrichtingstekens"
    )


@pytest.mark.parametrize(
    ("behalf", "status"),
    [
        ("nosuchperson99", 422),  # no such account in the default directory
        ("nosuchperson99@example.org", 422),
        ("bob@example.test", 403),  # the AD directory: not in this agent's scope
        ("EXAMPLE\\bob", 403),
    ],
)
def test_a_host_fix_on_behalf_of_someone_who_is_not_an_account_in_scope_is_refused(
    portal: PortalServer, agent: SignedIn, behalf: str, status: int
) -> None:
    """The ticket and the audit name the person served: any name was recorded before (a
    person who does not exist, or one in a directory the agent may not act on)."""
    before = _tickets(portal)
    r = _api(agent, "printer-queue-clear", {"reason": REASON, "choice": "office-1", "on_behalf_of": behalf})
    assert r.status_code == status, r.text
    assert r.json()["error"]["message"]
    assert _tickets(portal) == before  # nothing started, nothing recorded in anyone's name


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        ({"pwdAccountLockedTime": "000001010000Z"}, "disabled"),  # locked by an administrator
        ({"pwdEndTime": "20200101000000Z"}, "expired"),
    ],
    ids=["admin-locked", "expired"],
)
def test_a_disabled_or_expired_account_is_offered_no_fix(
    portal: PortalServer, agent: SignedIn, ldap_users: Any, attrs: dict[str, str], reason: str
) -> None:
    """Both fixes were offered and each only ever opened a ticket that went to second level
    (a tester's find): they are withheld, with what to do instead (en/nl)."""
    user, _pw = ldap_users.create_user()
    ldap_users.set(user, **attrs)
    view = agent.get(f"/api/v1/directory/users/corp/{user}").json()
    assert view["fixes"] == []
    assert {(w["fix"], w["reason"]) for w in view["withheld"]} == {
        ("account-unlock", reason),
        ("password-reset", reason),
    }
    assert all("second level" in w["message"] for w in view["withheld"])
    dutch = agent.get(f"/api/v1/directory/users/corp/{user}", headers={"Accept-Language": "nl"}).json()
    assert all("tweede lijn" in w["message"] for w in dutch["withheld"])
    page = agent.get("/agent/account", params={"directory": "corp", "user": user})
    assert "/agent/fixes/" not in page.text and "is not offered here" in page.text


def test_a_host_fix_is_found_by_the_object_it_acts_on(portal: PortalServer, agent: SignedIn, signed_in: Any) -> None:
    """A printer, service or disk fix had the requester as its subject and its audit target, so
    an auditor's search for the printer found nothing (a tester's find): the subject, and the
    target of its ticket events, is the inventory's choice key now."""
    from tests.integration.conftest import start_lab

    start_lab("sshd", "cups")
    r = _api(agent, "printer-queue-clear", {"reason": REASON, "choice": "office-2"})
    assert r.status_code == 200, r.text
    number = r.json()["ticket"]
    auditor = signed_in("auditor")
    found = auditor.get("/api/v1/tickets", params={"target": "office-2", "limit": "200"}).json()
    assert number in [t["number"] for t in found["items"]], found
    item = next(t for t in found["items"] if t["number"] == number)
    assert item["subject"] == "office-2" and item["requester"].startswith("demo-agent")
    events = auditor.get("/api/v1/audit/events", params={"ticket": number, "action": "ticket.opened"}).json()
    assert [e["target"] for e in events["items"]] == ["office-2"]


def test_a_directory_in_another_case_is_that_directory_and_hints_name_only_the_agents_own(
    portal: PortalServer, agent: SignedIn
) -> None:
    """``CORP`` was refused although ``corp`` is configured, and the refusal's hint listed
    ``ad`` too, which this agent may not use (a tester's find)."""
    r = agent.get("/api/v1/directory/users/CORP/demo-employee")
    assert r.status_code == 200 and r.json()["directory"] == "corp", r.text
    bad = agent.get("/api/v1/directory/users/nowhere/demo-employee")
    assert bad.status_code == 422 and "(corp)" in bad.json()["error"]["message"], bad.text
    assert "ad" not in bad.json()["error"]["message"].split("(")[-1]
