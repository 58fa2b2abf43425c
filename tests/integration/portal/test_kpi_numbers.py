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
