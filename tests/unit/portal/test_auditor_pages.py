"""Auditor and KPI routes in-process (TestClient, the role dependency overridden): every auditor
route is GET/HEAD and guarded by the auditor role, pages render filters, pages, exports, the
chain status and escaped values; bad input gives 422 with the message, never a traceback.
Over HTTP with real sign-ins: tests/integration/portal/test_auditor.py."""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import text

from portal.app import create_app
from portal.deps import allow, policy_of
from runner.auth import Principal
from runner.settings import Settings
from tests.seed import T0, Ledger

with warnings.catch_warnings():  # starlette warns that it prefers httpx2 (not installed; httpx works)
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[3]
AUDITOR_PREFIXES = ("/audit", "/api/v1/audit/")
AUDITOR_EXACT = ("/api/v1/tickets",)  # /api/v1/tickets/mine... belong to employees (not here)
KPI_PATHS = ("/kpi", "/api/v1/kpi")


def principal(role: str) -> Principal:
    roles = frozenset({"employee", role})
    return Principal(f"demo-{role}", "corp", f"demo-{role}", f"uid=demo-{role},dc=example,dc=org", role.title(), roles)


@pytest.fixture
def app_and_ledger(tmp_path: Path) -> Iterator[tuple[TestClient, Ledger]]:
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        runbooks_dir=REPO / "runbooks",
        inventory=REPO / "lab" / "inventory.yaml",
    )
    app = create_app(settings)
    for role in ("auditor", "employee"):
        app.dependency_overrides[allow(role)] = lambda role=role: principal("auditor")
    fl = app.state.portal.firstline
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client, Ledger(fl.engine, fl.audit, fl.audit.checkpoint_file)


def test_every_auditor_route_is_get_or_head_and_needs_the_auditor_role() -> None:
    from portal import app as app_module

    seen = []
    for router, prefix in app_module._ROUTERS:  # the route table create_app mounts
        for route in router.routes:
            path = prefix + getattr(route, "path", "")
            auditor = path.startswith(AUDITOR_PREFIXES) or path in AUDITOR_EXACT
            if not isinstance(route, APIRoute) or not (auditor or path in KPI_PATHS):
                continue
            seen.append(path)
            assert route.methods <= {"GET", "HEAD"}, (path, route.methods)
            policies = {policy_of(d.call) for d in route.dependant.dependencies} - {None}
            expected = "auditor" if auditor else "employee"
            assert policies == {expected}, (path, policies)
    assert set(seen) >= {
        "/audit",
        "/audit/tickets",
        "/audit/events",
        "/kpi",
        "/api/v1/tickets",
        "/api/v1/audit/events",
        "/api/v1/audit/export",
        "/api/v1/audit/verify",
        "/api/v1/kpi",
    }


def test_events_page_filters_pages_links_exports_and_escapes(app_and_ledger: tuple[TestClient, Ledger]) -> None:
    client, led = app_and_ledger
    for i in range(5):
        led.event(ts=T0, actor="agent7", target=f"<script>alert({i})</script>", action="ldap.unlock_account")
    led.event(ts=T0, actor="bob", target="=1+1")
    led.event(ts=T0, actor="mallory", target="gpj.\u202eexe")  # a bidi override hides the real name
    page = client.get("/audit/events", params={"actor": "agent7", "limit": 2, "since": "2026-11-02T10:00+01:00"})
    assert page.status_code == 200, page.text[:2000]
    html = page.text
    assert 'data-chain="verified"' in html
    assert "Events that match: 5" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(4)" in html
    assert "alert(2)" not in html  # page 1 holds the two newest
    assert 'id="next-page"' in html and "cursor=" in html
    assert "/api/v1/audit/export?kind=events&amp;format=csv&amp;actor=agent7" in html
    link = re.search(r'href="([^"]+)" rel="next"', html)
    assert link is not None
    second = client.get(link.group(1).replace("&amp;", "&"))
    assert second.status_code == 200 and "alert(2)" in second.text and "alert(4)" not in second.text
    hidden = client.get("/audit/events", params={"actor": "mallory"}).text
    assert "\u202e" not in hidden and "gpj.\\u202eexe" in hidden  # shown escaped, visible
    tickets = client.get("/audit/tickets")
    assert tickets.status_code == 200 and "Tickets that match: 0" in tickets.text
    number = f"FL-{led.ticket(requester='carol'):06d}"
    led.event(actor="carol", ticket=number)
    listed = client.get("/audit/tickets").text
    assert f'<a href="/audit/events?ticket={number}">{number}</a>' in listed  # to the ticket's events
    events = client.get("/audit/events", params={"ticket": number}).text
    assert "Events that match: 1" in events and f'<a href="/audit/events?ticket={number}">' in events


def test_bad_filters_render_the_page_with_the_message(app_and_ledger: tuple[TestClient, Ledger]) -> None:
    client, _ = app_and_ledger
    for params in ({"since": "yesterday"}, {"cursor": "forged"}, {"until": "2026-02-30"}, {"state": "x y"}):
        page = client.get("/audit/events", params=params)
        assert page.status_code == 422, params
        assert 'id="filter-error"' in page.text and "Traceback" not in page.text
        assert 'value="yesterday"' in page.text or "yesterday" not in str(params)  # what was typed is kept
    api = client.get("/api/v1/audit/events", params={"since": "yesterday"})
    assert api.status_code == 422 and api.json()["error"]["code"] == "invalid_input"
    assert client.get("/api/v1/audit/export", params={"format": "xlsx"}).status_code == 422
    assert client.get("/api/v1/tickets", params={"limit": 0}).status_code == 422
    assert client.get("/kpi", params={"since": "2026-12-02", "until": "2026-12-01"}).status_code == 422
    for path in ("/api/v1/audit/events", "/api/v1/tickets", "/api/v1/audit/export", "/audit/events"):
        for params in ({"actor": "A" * 5000}, {"cursor": "B" * 5000}, {"target": "x\u0000y"}):
            if "cursor" in params and path.endswith("/export"):
                continue  # an export has no pages (unknown parameters are ignored)
            r = client.get(path, params=params)
            assert r.status_code == 422, (path, params)
            assert "AAAAAAAA" not in r.text and "BBBBBBBB" not in r.text  # never echoed


def test_api_pages_exports_and_verify(app_and_ledger: tuple[TestClient, Ledger]) -> None:
    client, led = app_and_ledger
    for i in range(7):
        led.event(ts=T0, actor="agent7", target=f"-{i}+1")
    led.ticket(requester="carol", subject="@carol")
    seen: list[int] = []
    cursor = None
    while True:
        body = client.get(
            "/api/v1/audit/events", params={"actor": "agent7", "limit": 3, **({"cursor": cursor} if cursor else {})}
        ).json()
        assert body["count"] == 7
        seen += [e["seq"] for e in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7
    exp = client.get("/api/v1/audit/export", params={"format": "csv", "actor": "agent7"})
    assert exp.status_code == 200 and exp.headers["content-type"].startswith("text/csv")
    assert "attachment" in exp.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exp.text, newline="")))
    assert len(rows) == 7 and all(r["target"].startswith("'-") for r in rows)
    jl = client.get("/api/v1/audit/export", params={"format": "jsonl", "kind": "tickets"})
    assert [json.loads(line)["subject"] for line in jl.text.splitlines()] == ["@carol"]
    tk = client.get("/api/v1/tickets", params={"on_behalf_of": "carol"}).json()
    assert tk["count"] == 1 and tk["items"][0]["number"] == "FL-000001"
    assert client.get("/api/v1/audit/verify").json()["ok"] is True


def test_kpi_page_has_accessible_charts_with_definitions(app_and_ledger: tuple[TestClient, Ledger]) -> None:
    client, led = app_and_ledger
    led.ticket(opened=T0, requester="alice", runbook="<b>unlock</b>")
    led.ticket(opened=T0, requester="bob", state="escalated")
    page = client.get("/kpi", params={"since": "2026-11-01", "until": "2026-11-08"})
    assert page.status_code == 200, page.text[:2000]
    html = page.text
    assert html.count('role="img"') == 5 and html.count("<desc id=") == 5
    assert "<b>unlock</b>" not in html and "&lt;b&gt;unlock&lt;/b&gt;" in html
    assert "less than 7 days later" in html  # the FCR definition under its chart
    assert "<script" not in html
    assert '<th scope="col">identity/account</th>' in html  # tickets per day, per category
    data = client.get("/api/v1/kpi", params={"since": "2026-11-01", "until": "2026-11-08"}).json()
    assert data["overall"]["tickets"] == 2 and data["overall"]["escalation_rate"] == 0.5


def test_a_count_beyond_the_cap_is_shown_as_more_than(
    app_and_ledger: tuple[TestClient, Ledger], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer counts at most ``COUNT_CAP`` matches: the API says ``count_capped``, the
    page "more than" with the language's digit grouping; below the cap the count is exact."""
    from runner import queries

    client, led = app_and_ledger
    monkeypatch.setattr(queries, "COUNT_CAP", 1000)
    with led.engine.begin() as conn:  # 1,001 events of agent7 without 1,001 chained appends
        conn.execute(
            text(
                "INSERT INTO audit_event (seq, ts, actor, actor_roles, action, outcome, detail, prev_hash, hash) "
                "VALUES (:seq, '2026-11-30T08:00:00.000000+00:00', 'agent7', 'agent', 'x', 'success', '{}', '', '')"
            ),
            [{"seq": 1000 + i} for i in range(1001)],
        )
    body = client.get("/api/v1/audit/events", params={"actor": "agent7", "limit": 1}).json()
    assert (body["count"], body["count_capped"], len(body["items"])) == (1000, True, 1)
    assert "Events that match: more than 1,000" in client.get("/audit/events", params={"actor": "agent7"}).text
    client.cookies.set("fl_lang", "nl")
    assert "Gebeurtenissen die voldoen: meer dan 1.000" in client.get("/audit/events", params={"actor": "agent7"}).text
    client.cookies.delete("fl_lang")
    exact = client.get("/api/v1/audit/events", params={"actor": "nobody"}).json()
    assert (exact["count"], exact["count_capped"]) == (0, False)
    assert "Events that match: 0" in client.get("/audit/events", params={"actor": "nobody"}).text


def test_an_escalated_ticket_has_no_resolved_at_but_shows_when_it_ended(
    app_and_ledger: tuple[TestClient, Ledger],
) -> None:
    """ITIL: resolved_at is the time of resolution. An escalated ticket ended (closed_at,
    revision 0015) but was not resolved: the API, the export and the agent's page say so."""
    client, led = app_and_ledger
    led.ticket(state="escalated", requester="carol")
    led.ticket(state="resolved", requester="dave")
    items = {i["state"]: i for i in client.get("/api/v1/tickets").json()["items"]}
    assert items["escalated"]["resolved_at"] is None and items["escalated"]["closed_at"]
    assert items["resolved"]["resolved_at"] == items["resolved"]["closed_at"]
    exp = client.get("/api/v1/audit/export", params={"format": "csv", "kind": "tickets"})
    rows = {r["state"]: r for r in csv.DictReader(io.StringIO(exp.text, newline=""))}
    assert rows["escalated"]["resolved_at"] == "" and rows["escalated"]["closed_at"] == items["escalated"]["closed_at"]
    assert exp.text.splitlines()[0].endswith(",work_note,closed_at")  # new column last
    client.app.dependency_overrides[allow("agent")] = lambda: principal("agent")  # type: ignore[attr-defined]
    page = client.get(f"/agent/tickets/{items['escalated']['number']}")
    assert page.status_code == 200, page.text
    assert f'<dt>Ended</dt><dd><time datetime="{items["escalated"]["closed_at"]}">' in page.text
