"""CSV exports are safe to open in a spreadsheet whatever space comes before a formula: a
cell whose first visible character is ``=`` ``+`` ``-`` ``@`` gets a leading ``'``, and
"first visible" skipped only the ASCII space, so a value behind a no-break, figure or
ideographic space went out as a live formula. Unicode text round-trips unchanged.
Over HTTP against the real portal, as the auditor demo user, for both exports."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tests.portal_support import PortalServer, SignedIn
from tests.seed import portal_ledger

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

AT = datetime(2019, 5, 6, 10, 0, tzinfo=UTC)
HOSTILE = [
    '\u00a0=HYPERLINK("http://x.test")',  # no-break space
    "\u2007+cmd|' /C calc'!A0",  # figure space
    "\u3000@SUM(A1)",  # ideographic space
    "\u202f-2+3",  # narrow no-break space
    " =1+1",  # ASCII space (neutralised before too)
]
PLAIN = "Zoë's 𝒳 naïve ünïcode € 😀"


def _csv(auditor: SignedIn, **params: str) -> list[dict[str, str]]:
    r = auditor.get("/api/v1/audit/export", params={"format": "csv", **params})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text[:300]
    return list(csv.DictReader(io.StringIO(r.text, newline="")))


def test_csv_cells_behind_any_space_are_neutralised_and_unicode_round_trips(
    portal: PortalServer, signed_in: Callable[..., SignedIn]
) -> None:
    actor = f"cells-{uuid.uuid4().hex[:8]}"
    led = portal_ledger(portal.data_dir, portal.database_url)
    try:
        for value in (*HOSTILE, PLAIN):
            led.event(ts=AT, actor=actor, action="ldap.unlock_account", target=value)
            led.ticket(opened=AT, requester=actor, subject=value)
    finally:
        led.engine.dispose()
    auditor = signed_in("auditor")

    events = _csv(auditor, kind="events", actor=actor)
    tickets = _csv(auditor, kind="tickets", on_behalf_of=actor)
    for rows, column in ((events, "target"), (tickets, "subject")):
        cells = [row[column] for row in rows]
        assert len(cells) == len(HOSTILE) + 1, cells
        for value in HOSTILE:
            assert "'" + value in cells, (value, cells)  # the stored value, made text for a spreadsheet
        assert PLAIN in cells  # unicode unchanged, no quote added
