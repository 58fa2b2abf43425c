"""Numbers on the pages are written in the page's language: the Dutch KPI page said
"33.3 %" and "3.5 min" (English decimals) where Dutch readers write "33,3 %" and "3,5 min".
Over HTTP against the real portal, as the auditor demo user."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.portal_support import PortalServer, SignedIn
from tests.seed import portal_ledger

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

DAY = datetime(2021, 6, 2, 9, 0, tzinfo=UTC)  # a range no other test seeds
RANGE = {"since": "2021-06-01", "until": "2021-06-08"}


def _figures(html: str) -> dict[str, str]:
    return dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", html))


@pytest.mark.parametrize(
    ("lang", "rate", "median", "labels"),
    [
        ("en", "33.3 %", "3.5 min", ("Escalation rate", "Median time to resolve")),
        ("nl", "33,3 %", "3,5 min", ("Escalatiegraad", "Mediane oplostijd")),
    ],
)
def test_kpi_page_writes_decimals_in_the_page_language(
    portal: PortalServer,
    signed_in: Callable[..., SignedIn],
    lang: str,
    rate: str,
    median: str,
    labels: tuple[str, str],
) -> None:
    led = portal_ledger(portal.data_dir, portal.database_url)
    try:
        if not portal.query("SELECT id FROM ticket WHERE category = 'kpi-numbers/test'"):
            for i, state in enumerate(("resolved", "resolved", "escalated")):
                led.ticket(
                    opened=DAY + timedelta(hours=i),
                    requester=f"kpi{i}-{uuid.uuid4().hex[:6]}",
                    state=state,
                    category="kpi-numbers/test",
                    resolve_after=timedelta(seconds=210),
                )
    finally:
        led.engine.dispose()
    auditor = signed_in("auditor")
    page = auditor.get("/kpi", params=RANGE, headers={"Accept-Language": lang})
    assert page.status_code == 200, page.text[:1000]
    assert f'lang="{lang}"' in page.text
    figures = _figures(page.text)
    assert figures[labels[0]] == rate, figures
    assert figures[labels[1]] == median, figures
    # the per-category table and the charts' tooltips use the same notation
    table = page.text[page.text.index('id="per-category"') :]
    assert f"<td>{rate}</td>" in table and f"<td>{median}</td>" in table
    other = {"en": ("33,3 %", "3,5 min"), "nl": ("33.3 %", "3.5 min")}[lang]
    assert other[0] not in page.text and other[1] not in page.text


def test_each_rate_sits_beside_its_own_denominator(portal: PortalServer, signed_in: Callable[..., SignedIn]) -> None:
    """ "account-unlock 62.5 % 9": a rate of 5 out of 8 decided tickets beside all 9 tickets
    could not be checked by hand (a tester's find). The FCR and escalation tables count the
    decided tickets, the time-to-resolve table the resolved ones; the category table has both."""
    day = DAY + timedelta(days=3)  # 2021-06-05, inside RANGE, apart from the test above
    led = portal_ledger(portal.data_dir, portal.database_url)
    try:
        if not portal.query("SELECT id FROM ticket WHERE category = 'kpi-denominators/test'"):
            for i, state in enumerate(("resolved", "escalated", "queued")):  # 3 tickets, 2 decided, 1 resolved
                led.ticket(
                    opened=day + timedelta(hours=i),
                    requester=f"den{i}-{uuid.uuid4().hex[:6]}",
                    state=state,
                    runbook="kpi-denominators",
                    category="kpi-denominators/test",
                )
    finally:
        led.engine.dispose()
    page = signed_in("auditor").get("/kpi", params=RANGE).text

    def row(table_id: str) -> str:
        table = page[page.index(f'id="{table_id}"') :]
        table = table[: table.index("</table>")]
        return re.search(r"<tr><th scope=\"row\">kpi-denominators</th>(.*?)</tr>", table).group(1)  # type: ignore[union-attr]

    assert "Decided tickets" in page and "Resolved tickets" in page
    assert row("chart-fcr-table").endswith("<td>2</td>"), row("chart-fcr-table")
    assert row("chart-esc-table").endswith("<td>2</td>")
    assert row("chart-self-table").endswith("<td>3</td>")
    assert row("chart-ttr-table").endswith("<td>1</td>")
