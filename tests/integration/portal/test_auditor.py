"""The auditor's pages and API over HTTP against the real portal (uvicorn subprocess, real
sign-ins on the lab slapd): filters with time zones, keyset pages, streamed exports of the
current filter, the chain status (also after tampering), the role matrix and read-only-ness.

Rows are seeded into the portal's own ledger through the real audit chain (the portal's key),
with an actor name unique to the test, so tests sharing the session portal do not collide."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.portal_support import PortalServer, SignedIn
from tests.seed import Ledger, portal_ledger

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

AUDIT_API = ("/api/v1/tickets", "/api/v1/audit/events", "/api/v1/audit/export", "/api/v1/audit/verify")
AUDIT_PAGES = ("/audit", "/audit/events", "/audit/tickets")
AT = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)  # 08:30 at +01:00


@pytest.fixture
def ledger_of() -> Iterator[Callable[[PortalServer], Ledger]]:
    opened: list[Ledger] = []

    def open_(server: PortalServer) -> Ledger:
        led = portal_ledger(server.data_dir, server.database_url)
        opened.append(led)
        return led

    yield open_
    for led in opened:
        led.engine.dispose()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_auditor_filters_with_time_zones_pages_and_exports(
    portal: PortalServer, signed_in: Callable[..., SignedIn], ledger_of: Callable[[PortalServer], Ledger]
) -> None:
    led = ledger_of(portal)
    actor = unique("h2agent")
    for i in range(7):  # the same instant for all: pages must not skip or repeat
        led.event(ts=AT, actor=actor, action="ldap.unlock_account", target=f'=HYPERLINK("x{i}")', on_behalf_of="alice")
    led.event(ts=AT + timedelta(hours=1), actor=actor, action="ticket.opened", target="later")
    auditor = signed_in("auditor")

    seen: list[int] = []
    cursor: str | None = None
    while True:
        params = {
            "actor": actor,
            "action": "ldap.unlock_account",
            "limit": "3",
            **({"cursor": cursor} if cursor else {}),
        }
        r = auditor.get("/api/v1/audit/events", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["count"] == 7
        seen += [e["seq"] for e in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7 and seen == sorted(seen, reverse=True)

    def count(**params: str) -> int:
        r = auditor.get("/api/v1/audit/events", params={"actor": actor, **params})
        assert r.status_code == 200, r.text
        n: int = r.json()["count"]
        return n

    assert count(since="2026-11-02T08:30+01:00") == 8  # inclusive, the same instant in +01:00
    assert count(since="2026-11-02T07:30Z") == 8
    assert count(since="2026-11-02T07:30") == 8  # no offset = UTC
    assert count(since="2026-11-02T08:30:00.000001+01:00") == 1
    assert count(until="2026-11-02T08:30+01:00") == 0  # exclusive
    assert count(until="2026-11-02 09:30+01:00") == 7
    bad = auditor.get("/api/v1/audit/events", params={"since": "2026-11-02T08:30+25:00"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"

    with auditor.client.stream(
        "GET", "/api/v1/audit/export", params={"format": "csv", "actor": actor, "action": "ldap.unlock_account"}
    ) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
        assert resp.headers["content-disposition"].startswith("attachment;")
        text = "".join(resp.iter_text())
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == 7 and {r["actor"] for r in rows} == {actor}
    assert all(r["target"].startswith("'=HYPERLINK") for r in rows)  # neutralised
    jl = auditor.get("/api/v1/audit/export", params={"format": "jsonl", "actor": actor})
    records = [json.loads(line) for line in jl.text.splitlines()]
    assert len(records) == 8 and records[0]["target"] == '=HYPERLINK("x0")'  # JSON keeps the stored value

    # the auditor's own sign-in is in the log with the client address the portal saw
    mine = auditor.get("/api/v1/audit/events", params={"action": "portal.sign_in", "limit": "200"}).json()
    own = [e for e in mine["items"] if e["actor"].split("@")[0] == auditor.login]
    assert own and own[0]["client_ip"]

    page = auditor.get("/audit/events", params={"actor": actor, "limit": "5"})
    assert page.status_code == 200
    assert 'data-chain="verified"' in page.text and 'id="next-page"' in page.text
    assert f"actor={actor}" in page.text  # export links carry the filter


def test_role_matrix_for_auditor_and_kpi_routes(portal: PortalServer, signed_in: Callable[..., SignedIn]) -> None:
    for role in ("employee", "agent"):
        who = signed_in(role)
        for path in AUDIT_API:
            r = who.get(path)
            assert r.status_code == 403, (role, path, r.status_code)
            err = r.json()["error"]
            assert err["code"] == "forbidden" and "auditor" in err["message"]
        for path in AUDIT_PAGES:
            r = who.get(path, follow_redirects=False)
            assert r.status_code == 403 and "auditor" in r.text, (role, path)
        assert who.get("/kpi").status_code == 200
        assert who.get("/api/v1/kpi").status_code == 200
    with portal.client() as anon:
        for path in (*AUDIT_API, "/api/v1/kpi"):
            r = anon.get(path)
            assert r.status_code == 401 and r.json()["error"]["code"] == "signin_required", path
        for path in (*AUDIT_PAGES, "/kpi"):
            r = anon.get(path, follow_redirects=False)
            assert r.status_code in (302, 303) and r.headers["location"].startswith("/signin"), path
    auditor = signed_in("auditor")
    for path in (*AUDIT_API, "/api/v1/kpi"):
        assert auditor.get(path).status_code == 200, path
    for path in (*AUDIT_PAGES, "/kpi"):
        assert auditor.get(path, follow_redirects=True).status_code == 200, path


def test_an_auditor_api_token_exports(portal: PortalServer, signed_in: Callable[..., SignedIn]) -> None:
    auditor = signed_in("auditor")
    made = auditor.post("/api/v1/tokens", json={"label": unique("export")}, headers={"X-CSRF-Token": auditor.csrf})
    assert made.status_code == 201, made.text
    with portal.client(headers={"Authorization": f"Bearer {made.json()['token']}"}) as bot:
        r = bot.get("/api/v1/audit/export", params={"format": "jsonl", "action": "portal.sign_in"})
        assert r.status_code == 200 and all(json.loads(x)["action"] == "portal.sign_in" for x in r.text.splitlines())


def test_nothing_on_the_auditor_routes_changes_state(portal: PortalServer, signed_in: Callable[..., SignedIn]) -> None:
    auditor = signed_in("auditor")
    mine = "SELECT count(*) FROM audit_event WHERE actor = :login OR actor LIKE :pattern"
    before = portal.query(mine, login=auditor.login, pattern=auditor.login + "@%")[0][0]
    tickets_before = portal.query("SELECT count(*) FROM ticket")[0][0]
    for path in (*AUDIT_API, *AUDIT_PAGES, "/api/v1/kpi", "/kpi"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            r = auditor.request(method, path, headers={"X-CSRF-Token": auditor.csrf}, data={"csrf_token": auditor.csrf})
            assert r.status_code == 405, (method, path, r.status_code)
        assert auditor.get(path, follow_redirects=True).status_code == 200
    assert portal.query(mine, login=auditor.login, pattern=auditor.login + "@%")[0][0] == before
    assert portal.query("SELECT count(*) FROM ticket")[0][0] == tickets_before


def test_a_tampered_chain_is_reported_on_the_api_and_the_page(
    portal_with: Callable[..., PortalServer], ledger_of: Callable[[PortalServer], Ledger]
) -> None:
    from tests.portal_support import sign_in

    server = portal_with()
    auditor = sign_in(server, "auditor")
    try:
        assert auditor.get("/api/v1/audit/verify").json()["ok"] is True
        assert 'data-chain="verified"' in auditor.get("/audit/events").text
        seq = server.query("SELECT min(seq) FROM audit_event")[0][0]
        server.execute("UPDATE audit_event SET target = 'forged' WHERE seq = :seq", seq=seq)
        status = auditor.get("/api/v1/audit/verify").json()
        assert status["ok"] is False and status["first_bad_seq"] == seq and "altered" in status["problem"]
        page = auditor.get("/audit/events")
        assert 'data-chain="broken"' in page.text and 'role="alert"' in page.text
    finally:
        auditor.client.close()


def test_a_filter_the_api_cannot_apply_is_refused_not_dropped(
    portal: PortalServer, signed_in: Callable[..., SignedIn], ledger_of: Callable[[PortalServer], Ledger]
) -> None:
    """A misspelt filter, a filter given twice or a filter of the other kind must not
    silently widen (or swap) the result: the answer would look like the filtered rows."""
    led = ledger_of(portal)
    actor, other = unique("qaone"), unique("qatwo")
    led.event(ts=AT, actor=actor, action="ldap.unlock_account", target="x")
    led.event(ts=AT, actor=other, action="ldap.unlock_account", target="y")
    auditor = signed_in("auditor")
    refused = {
        "/api/v1/audit/events?acter=" + actor: "acter",  # misspelt: was the whole ledger
        f"/api/v1/audit/events?actor={actor}&actor={other}": "actor",  # twice: was the last one only
        "/api/v1/tickets?actorr=" + actor: "actorr",
        "/api/v1/tickets?state=escalated&state=resolved": "state",
        f"/api/v1/audit/export?kind=events&format=csv&acter={actor}": "acter",
        f"/api/v1/audit/export?kind=events&format=jsonl&actor={actor}&actor={other}": "actor",
        "/api/v1/audit/export?kind=tickets&kind=events": "kind",
        "/api/v1/audit/export?kind=tickets&action=ldap.unlock_account": "action",  # events only: was every ticket
        "/api/v1/audit/export?kind=events&category=identity": "category",  # tickets only
    }
    for url, field in refused.items():
        r = auditor.get(url)
        assert r.status_code == 422, (url, r.status_code, r.text[:300])
        error = r.json()["error"]
        assert error["code"] == "invalid_input" and field in error["message"], (url, error)
    for url, choices in (
        ("/api/v1/audit/export?format=xml", "csv, jsonl"),
        ("/api/v1/audit/export?kind=bogus", "events, tickets"),
    ):  # a misspelt choice names the choices (was "does not have the expected format")
        r = auditor.get(url)
        assert r.status_code == 422 and f"must be one of: {choices}" in r.json()["error"]["message"], r.text
    dutch = auditor.get(f"/api/v1/audit/events?actor={actor}&actor={other}", headers={"Accept-Language": "nl"})
    assert dutch.status_code == 422 and "meer dan eens" in dutch.json()["error"]["message"], dutch.text
    # what is asked once and known still answers
    ok = auditor.get("/api/v1/audit/export", params={"kind": "events", "format": "jsonl", "actor": actor})
    assert ok.status_code == 200 and [json.loads(line)["actor"] for line in ok.text.splitlines()] == [actor]
    page = auditor.get("/api/v1/audit/events", params={"actor": actor, "limit": "1", "cursor": ""})
    assert page.status_code == 200 and page.json()["count"] == 1


def _filter_error(html: str) -> str | None:
    found = re.search(r'<div class="notice notice-error" role="alert" id="filter-error"><p>(.*?)</p>', html, re.S)
    return found.group(1) if found else None


def _form_fields(page: str) -> dict[str, str]:
    """What the page's filter form sends as it stands (what a browser submits)."""
    form = page.split('class="filter-form"')[1].split("</form>")[0]
    return {name: html.unescape(value) for name, value in re.findall(r'name="([^"]+)"[^>]*?value="([^"]*)"', form)}


def test_the_pages_refuse_a_filter_they_cannot_apply_and_keep_the_form(
    portal: PortalServer, signed_in: Callable[..., SignedIn], ledger_of: Callable[[PortalServer], Ledger]
) -> None:
    """A hand-edited or bookmarked page URL with a misspelt filter showed every row, one with a
    filter given twice showed the last one's rows: each under the filter form as if filtered.
    The pages now apply the API's rule (portal.api.audit.query_problem) and say so, en and nl."""
    led = ledger_of(portal)
    actor, other = unique("pgone"), unique("pgtwo")
    for _ in range(2):
        led.event(ts=AT, actor=actor, action="ldap.unlock_account", target="x")
    led.event(ts=AT, actor=other, action="ldap.unlock_account", target="y")
    auditor = signed_in("auditor")
    refused = {
        "/audit/events?acter=" + actor: ("acter", "did you mean actor"),  # was the whole ledger
        f"/audit/events?actor={actor}&actor={other}": ("actor", "more than once"),  # was the last one only
        "/audit/events?limit=1&limit=2": ("limit", "more than once"),
        "/audit/tickets?actorr=" + actor: ("actorr", "did you mean actor"),
        "/audit/tickets?state=escalated&state=resolved": ("state", "more than once"),
        # an events filter, no near miss of a tickets one: not echoed (a key may be a misplaced secret)
        "/audit/tickets?action=ldap.unlock_account": ("?", "is not a field of this request"),
    }
    for url, (field, words) in refused.items():
        page = auditor.get(url)
        assert page.status_code == 422, (url, page.status_code)
        error = _filter_error(page.text)
        assert error is not None and f"{field}: " in error and words in error, (url, error)
        assert 'class="filter-form"' in page.text and 'id="export-csv"' not in page.text, url  # form kept
        assert actor not in page.text.split('class="filter-form"')[1].split("</form>")[1], url  # no rows
    nl = auditor.get(f"/audit/events?actor={actor}&actor={other}", headers={"Accept-Language": "nl"})
    error = _filter_error(nl.text)
    assert nl.status_code == 422 and error is not None and "actor: is meer dan eens opgegeven" in error, error
    nl = auditor.get("/audit/tickets?acter=" + actor, headers={"Accept-Language": "nl"})
    assert nl.status_code == 422 and "acter: " in (_filter_error(nl.text) or ""), nl.text[-2000:]
    # what the page's own form sends (every field, empty ones too) and its next-page link still work
    form = _form_fields(auditor.get("/audit/events?limit=1").text) | {"actor": actor}
    assert {"actor", "action", "since", "until", "limit"} <= set(form), form
    first = auditor.get("/audit/events", params=form)
    assert first.status_code == 200 and _filter_error(first.text) is None, first.text[-2000:]
    found = re.search(r'<a href="([^"]+)" rel="next" id="next-page">', first.text)
    assert found, first.text[-2000:]
    second = auditor.get(html.unescape(found.group(1)))
    assert second.status_code == 200 and _filter_error(second.text) is None and actor in second.text
    form = _form_fields(auditor.get("/audit/tickets").text)
    assert {"actor", "category", "resolution_code"} <= set(form), form
    tickets = auditor.get("/audit/tickets", params=form | {"cursor": ""})
    assert tickets.status_code == 200 and _filter_error(tickets.text) is None
