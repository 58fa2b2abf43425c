"""The auditor's "part of" target is case-insensitive for every letter, on both databases:
on SQLite (the embedded default) ``lower()`` folds ASCII only, so ``ärger`` found no
``ÄRGER`` — an empty page, a count of 0 and an empty export where there were rows. Over
HTTP against the real portal, as the auditor demo user: pages, counts and both exports."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tests.portal_support import PortalServer, SignedIn
from tests.seed import portal_ledger

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

AT = datetime(2019, 5, 7, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("typed", ["lower", "upper"])
def test_target_matches_non_ascii_letters_in_any_case(
    portal: PortalServer, signed_in: Callable[..., SignedIn], typed: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    stored = f"ÄRGER MIT ZOË {tag}" if typed == "lower" else f"ärger mit zoë {tag}"
    search = (stored.lower() if typed == "lower" else stored.upper())[: -len(tag) - 1]  # "ärger mit zoë"
    led = portal_ledger(portal.data_dir, portal.database_url)
    try:
        led.event(ts=AT, actor=f"case-{tag}", action="ldap.unlock_account", target=stored)
        led.ticket(opened=AT, requester=f"case-{tag}", subject=stored)
    finally:
        led.engine.dispose()
    auditor = signed_in("auditor")

    for path, person, column in (
        ("/api/v1/audit/events", {"actor": f"case-{tag}"}, "target"),
        ("/api/v1/tickets", {"on_behalf_of": f"case-{tag}"}, "subject"),
    ):
        kind = "events" if "events" in path else "tickets"
        page = auditor.get(path, params={**person, "target": search})
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["count"] == 1 and [item[column] for item in body["items"]] == [stored], body
        # the export scans the rows (not the distinct values the page starts from)
        exported = auditor.get(
            "/api/v1/audit/export", params={**person, "target": search, "kind": kind, "format": "csv"}
        )
        rows = list(csv.DictReader(io.StringIO(exported.text, newline="")))
        assert [row[column] for row in rows] == [stored], exported.text
        lines = auditor.get(
            "/api/v1/audit/export", params={**person, "target": search, "kind": kind, "format": "jsonl"}
        ).text.splitlines()
        assert [json.loads(line)[column] for line in lines] == [stored]
    html = auditor.get("/audit/events", params={"target": search, "actor": f"case-{tag}"}).text
    assert "Events that match: 1" in html
