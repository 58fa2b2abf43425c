"""Rounding on the KPI page never turns some into none, or nearly all into all: one escalated
ticket among 2,001 was shown as an escalation rate of "0.0 %", 2,000 of 2,001 as "100.0 %",
a median time to resolve of 0.2 s as "0 s", and the range sentence cut its bounds to
minutes. Over HTTP against the real portal, as the auditor demo user; the API keeps the
exact fractions."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runner.ledger.tables import ticket
from tests.portal_support import PortalServer, SignedIn
from tests.seed import portal_ledger, ticket_row

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

DAY = datetime(2019, 4, 2, 9, 0, tzinfo=UTC)  # a range no other test seeds
RANGE = {"since": "2019-04-02", "until": "2019-04-03"}
CATEGORY = "kpi-rounding/test"
RESOLVED = 2000


def _row(i: int, state: str, opened_by: str | None = None) -> dict[str, Any]:
    requester = f"kr{i}-{uuid.uuid4().hex[:6]}"  # one ticket each: no repeats
    return ticket_row(
        DAY + timedelta(seconds=i),
        ended_after=timedelta(milliseconds=200),
        state=state,
        requester=requester,
        subject=requester,
        params=json.dumps({"user": requester}),
        category=CATEGORY,
        opened_by=opened_by or requester,
    )


def _figures(html: str) -> dict[str, str]:
    return dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", html))


@pytest.mark.parametrize(
    ("lang", "labels", "some", "nearly_all", "quick"),
    [
        (
            "en",
            ("Escalation rate", "First-contact resolution", "Self-service share", "Median time to resolve"),
            "&lt; 0.1 %",
            "&gt; 99.9 %",
            "&lt; 1 s",
        ),
        (
            "nl",
            ("Escalatiegraad", "Oplossing bij eerste contact", "Aandeel selfservice", "Mediane oplostijd"),
            "&lt; 0,1 %",
            "&gt; 99,9 %",
            "&lt; 1 s",
        ),
    ],
)
def test_kpi_page_never_rounds_some_to_none_or_nearly_all_to_all(
    portal: PortalServer,
    signed_in: Callable[..., SignedIn],
    lang: str,
    labels: tuple[str, str, str, str],
    some: str,
    nearly_all: str,
    quick: str,
) -> None:
    if not portal.query("SELECT id FROM ticket WHERE category = :c", c=CATEGORY):
        led = portal_ledger(portal.data_dir, portal.database_url)
        try:
            rows = [_row(i, "resolved") for i in range(RESOLVED)]
            rows.append(_row(RESOLVED, "escalated", opened_by="demo-agent@example.org"))  # an agent's, not self-service
            with led.engine.begin() as conn:
                conn.execute(ticket.insert(), rows)
        finally:
            led.engine.dispose()
    auditor = signed_in("auditor")
    overall = auditor.get("/api/v1/kpi", params=RANGE).json()["overall"]
    assert (overall["tickets"], overall["escalated"], overall["fcr"], overall["self_service"]) == (
        RESOLVED + 1,
        1,
        RESOLVED,
        RESOLVED,
    )
    assert overall["escalation_rate"] == pytest.approx(1 / (RESOLVED + 1))
    assert overall["median_resolve_s"] == pytest.approx(0.2)

    page = auditor.get("/kpi", params=RANGE, headers={"Accept-Language": lang})
    assert page.status_code == 200, page.text[:1000]
    figures = _figures(page.text)
    escalation, fcr, self_service, median = (figures.get(label) for label in labels)
    assert escalation == some, figures  # was "0.0 %": one escalation is not none
    assert fcr == nearly_all and self_service == nearly_all, figures  # was "100.0 %"
    assert median == quick, figures  # was "0 s"
    table = page.text[page.text.index('id="per-category"') :]
    row = table[table.index(CATEGORY) : table.index("</tr>", table.index(CATEGORY))]
    assert row.count(f"<td>{nearly_all}</td>") == 2 and f"<td>{some}</td>" in row and f"<td>{quick}</td>" in row
    assert "0.0 %" not in row and "0,0 %" not in row and "100.0 %" not in row and "100,0 %" not in row


@pytest.mark.parametrize(
    ("since", "until", "shown"),
    [
        (
            "2019-04-02T09:00:00.5Z",
            "2019-04-02T09:00:30Z",
            "from 2019-04-02 09:00:00.500000 to 2019-04-02 09:00:30 (UTC)",
        ),
        ("2019-04-02T10:30+01:00", "2019-04-03", "from 2019-04-02 09:30 to 2019-04-03 00:00 (UTC)"),
    ],
)
def test_kpi_page_states_the_range_it_counted_not_one_cut_to_minutes(
    portal: PortalServer, signed_in: Callable[..., SignedIn], since: str, until: str, shown: str
) -> None:
    """The range sentence cut both bounds to minutes: "from 09:00 to 09:00" for the half
    minute that was counted."""
    auditor = signed_in("auditor")
    page = auditor.get("/kpi", params={"since": since, "until": until})
    assert page.status_code == 200, page.text[:1000]
    sentence = re.search(r'<p id="kpi-range">([^<]*)</p>', page.text)
    assert sentence is not None and sentence.group(1) == f"Tickets opened {shown}.", sentence
