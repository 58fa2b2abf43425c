"""The portal reads a ticket number as the CLI does (runner.ticketnumber; the table is
tests/integration/core/test_ticket_number_spellings.py): the employee's own-ticket API and
page, and the auditor's ticket filter (API and page), take every accepted spelling as the
same ticket and refuse the rest with 422 and the same sentence. Real portal, lab slapd."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.integration.core.test_ticket_number_spellings import REFUSED, spellings
from tests.portal_support import PortalServer, SignedIn, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]
SENTENCE = "is not a ticket number (they look like FL-000123)"


@pytest.fixture(scope="module")
def people(portal: PortalServer) -> Any:
    made = {
        role: sign_in(portal, role, address=f"192.0.2.{220 + i}")
        for i, role in enumerate(("employee", "auditor", "agent"))
    }
    yield made
    for s in made.values():
        s.client.close()


@pytest.fixture(scope="module")
def mine(people: dict[str, SignedIn]) -> str:
    """A ticket of the demo employee's own (account status, read only)."""
    employee = people["employee"]
    r = employee.post("/fix/account-status", data={"csrf_token": employee.csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/me/tickets/FL-"), r.text[:300]
    number: str = r.headers["location"].rsplit("/", 1)[1]
    return number


@pytest.mark.parametrize("which", range(len(spellings(1))))
def test_the_own_ticket_api_and_page_take_every_accepted_spelling(
    people: dict[str, SignedIn], mine: str, which: int
) -> None:
    employee, auditor = people["employee"], people["auditor"]
    typed = spellings(int(mine.removeprefix("FL-")))[which]
    spelled = quote(typed, safe="")
    api = employee.get(f"/api/v1/tickets/mine/{spelled}")
    assert api.status_code == 200 and api.json()["number"] == mine, (typed, api.status_code, api.text[:200])
    page = employee.get(f"/me/tickets/{spelled}")
    assert page.status_code == 200 and mine in page.text, (typed, page.status_code)
    found = auditor.get("/api/v1/tickets", params={"ticket": typed})
    assert found.status_code == 200 and [t["number"] for t in found.json()["items"]] == [mine], (typed, found.text)


@pytest.mark.parametrize("typed", REFUSED)
def test_other_spellings_are_refused_with_the_same_sentence(people: dict[str, SignedIn], typed: str) -> None:
    employee, auditor = people["employee"], people["auditor"]
    spelled = quote(typed, safe="")
    api = employee.get(f"/api/v1/tickets/mine/{spelled}")
    assert api.status_code == 422 and SENTENCE in api.json()["error"]["message"], (typed, api.status_code, api.text)
    page = employee.get(f"/me/tickets/{spelled}")
    assert page.status_code == 422 and SENTENCE in page.text, (typed, page.status_code)
    if typed.strip():
        found = auditor.get("/api/v1/tickets", params={"ticket": typed})
        assert found.status_code == 422 and SENTENCE in found.json()["error"]["message"], (typed, found.text)
    nl = employee.get(f"/api/v1/tickets/mine/{spelled}", headers={"Accept-Language": "nl"})
    assert "is geen ticketnummer (die zien eruit als FL-000123)" in nl.json()["error"]["message"]


@pytest.mark.parametrize("typed", REFUSED)
def test_the_agents_ticket_page_refuses_the_same_spellings_with_the_same_sentence(
    people: dict[str, SignedIn], mine: str, typed: str
) -> None:
    """It answered 404 "There is no ticket with that number" for a malformed number."""
    agent = people["agent"]
    for accepted in spellings(int(mine.removeprefix("FL-"))):
        page = agent.get(f"/agent/tickets/{quote(accepted, safe='')}")
        assert page.status_code == 200 and mine in page.text, (accepted, page.status_code)
    page = agent.get(f"/agent/tickets/{quote(typed, safe='')}")
    assert page.status_code == 422 and SENTENCE in page.text, (typed, page.status_code, page.text[:300])
