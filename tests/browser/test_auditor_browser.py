"""The auditor in a real browser: filters by keyboard with a time zone, follows the next page,
exports CSV and JSON Lines of the current filter, sees the chain verified; the auditor pages
and the KPI page pass axe in English and Dutch; screenshots to var/screenshots/."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.portal_support import PortalServer
from tests.seed import portal_ledger

pytestmark = pytest.mark.browser
AT = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)  # 08:30 at +01:00


def seed(server: PortalServer, n: int = 7) -> str:
    actor = f"h2browser-{uuid.uuid4().hex[:8]}"
    led = portal_ledger(server.data_dir, server.db_path)
    try:
        for i in range(n):
            led.event(ts=AT, actor=actor, action="ldap.unlock_account", target=f"=SUM({i})", on_behalf_of="alice")
        led.ticket(opened=AT, requester="alice", opened_by=actor, subject="alice")
    finally:
        led.engine.dispose()
    return actor


def sign_in_as_auditor(page: Any, browser_sign_in: Any, lang: str) -> None:
    page.goto("/signin")
    if lang == "nl":
        page.get_by_role("button", name="Nederlands").click()
        page.wait_for_url("**/signin")
    browser_sign_in(page, "auditor")
    assert page.locator("html").get_attribute("lang") == lang


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_auditor_filters_exports_and_sees_the_chain_verified(
    page: Any, browser_portal: PortalServer, browser_sign_in: Any, check_axe: Any, screenshot: Any, lang: str
) -> None:
    actor = seed(browser_portal)
    sign_in_as_auditor(page, browser_sign_in, lang)
    nav = {"en": "Audit", "nl": "Audit"}[lang]
    page.get_by_role("link", name=nav, exact=True).click()
    page.wait_for_url("**/audit/events")
    status = page.locator("#chain-status")
    assert status.get_attribute("data-chain") == "verified"
    assert status.get_attribute("role") == "status"
    check_axe(page, f"audit-events-{lang}")
    screenshot(page, f"audit-events-{lang}")

    # filter by keyboard: actor, and a start time given at +01:00 (the same instant as the rows)
    page.locator("#f-actor").fill(actor)
    page.locator("#f-since").fill("2026-11-02T08:30+01:00")
    page.locator("#f-since").press("Enter")
    page.wait_for_load_state()
    caption = page.locator("#results-caption").inner_text()
    assert caption.endswith(": 7"), caption
    assert page.locator("table.results tbody tr").count() == 7
    assert "=SUM(" in page.locator("table.results").inner_text()
    check_axe(page, f"audit-events-filtered-{lang}")
    screenshot(page, f"audit-events-filtered-{lang}")

    # one second later (+01:00) nothing matches: the offset is honoured
    page.locator("#f-since").fill("2026-11-02T08:30:01+01:00")
    page.locator("#f-since").press("Enter")
    page.wait_for_load_state()
    assert page.locator("#results-caption").inner_text().endswith(": 0")

    # pages of 3: next, next, and every row seen once
    page.goto(f"/audit/events?actor={actor}&limit=3")
    seen: list[str] = []
    while True:
        seen += page.locator("table.results tbody th[scope=row]").all_inner_texts()
        nxt = page.locator("#next-page")
        if nxt.count() == 0:
            break
        nxt.click()
        page.wait_for_load_state()
    assert len(seen) == len(set(seen)) == 7

    # exports of the current filter
    page.goto(f"/audit/events?actor={actor}")
    with page.expect_download() as info:
        page.locator("#export-csv").click()
    body = Path(info.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(body, newline="")))
    assert len(rows) == 7 and all(r["target"].startswith("'=SUM(") for r in rows)
    with page.expect_download() as info:
        page.locator("#export-jsonl").click()
    lines = Path(info.value.path()).read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["actor"] for x in lines] == [actor] * 7

    page.goto("/audit/tickets")
    check_axe(page, f"audit-tickets-{lang}")
    screenshot(page, f"audit-tickets-{lang}")
    bad = page.goto("/audit/tickets?since=yesterday")
    assert bad is not None and bad.status == 422
    assert page.locator("#filter-error").get_attribute("role") == "alert"
    check_axe(page, f"audit-tickets-error-{lang}")


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_kpi_page_charts_pass_axe(
    page: Any, browser_portal: PortalServer, browser_sign_in: Any, check_axe: Any, screenshot: Any, lang: str
) -> None:
    seed(browser_portal, 1)
    sign_in_as_auditor(page, browser_sign_in, lang)
    page.goto("/kpi?since=2026-11-01&until=2026-11-08")
    charts = page.locator("svg[role=img]")
    assert charts.count() == 5
    for i in range(charts.count()):
        label = charts.nth(i).get_attribute("aria-labelledby") or ""
        assert all(page.locator(f"[id='{part}']").count() == 1 for part in label.split())
    assert page.locator("p.definition").count() == 5
    check_axe(page, f"kpi-{lang}")
    screenshot(page, f"kpi-{lang}")
