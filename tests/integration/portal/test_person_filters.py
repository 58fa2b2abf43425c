"""The auditor's person filters and enumerated filters over HTTP against the real portal
(uvicorn subprocess, real sign-ins on the lab slapd), and the CLI's ``--as`` / ``tickets
list --requester`` as subprocesses on the same ledger.

* ``actor`` / ``on_behalf_of`` accept every sign-in form (``demo-agent``,
  ``DEMO-AGENT@example.org``, ``EXAMPLE-ORG\\demo-agent``) and find the person's rows in old
  (bare, as the CLI used to record) and new (canonical) forms alike.
* ``state=bogus`` / ``outcome=bogus`` / ``channel=bogus`` answer 422 naming the parameter and
  listing the values, on the API and on the pages, in English and Dutch."""

from __future__ import annotations

import html
import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.integration.conftest import REPO
from tests.portal_support import PortalServer, SignedIn
from tests.seed import Ledger, portal_ledger

pytestmark = [pytest.mark.integration]
FIRSTLINE = str(REPO / ".venv" / "bin" / "firstline")


@pytest.fixture
def ledger(portal: PortalServer) -> Iterator[Ledger]:
    led = portal_ledger(portal.data_dir, portal.database_url)
    yield led
    led.engine.dispose()


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def test_a_signed_in_person_is_found_by_every_sign_in_form(
    portal: PortalServer, signed_in: Callable[..., SignedIn]
) -> None:
    signed_in("agent")  # a real sign-in: recorded as demo-agent@example.org
    auditor = signed_in("auditor")
    exact = auditor.get("/api/v1/audit/events", params={"actor": "demo-agent@example.org"}).json()["count"]
    assert exact >= 1
    for typed in ("demo-agent", "DEMO-AGENT@example.org", "EXAMPLE-ORG\\demo-agent", "example-org\\Demo-Agent"):
        r = auditor.get("/api/v1/audit/events", params={"actor": typed})
        assert r.status_code == 200 and r.json()["count"] >= exact, (typed, r.text[:300])
        page = auditor.get("/audit/events", params={"actor": typed})
        assert page.status_code == 200 and "Nothing matches this filter" not in page.text, typed
        assert "demo-agent@example.org" in page.text


def test_old_and_new_forms_of_one_requester_are_found_together(
    portal: PortalServer, signed_in: Callable[..., SignedIn], ledger: Ledger
) -> None:
    who = unique("fltry")
    old = ledger.ticket(requester=who, subject=who, opened_by=who, channel="cli")  # the CLI's old bare form
    new = ledger.ticket(requester=f"{who}@example.org", subject=who, opened_by=f"{who}@example.org")
    ledger.event(actor=f"{who}@example.org", on_behalf_of=f"{who}@example.org")
    ledger.event(actor=who, on_behalf_of=who)
    auditor = signed_in("auditor")
    for typed in (who, who.upper(), f"{who}@example.org", f"EXAMPLE-ORG\\{who.upper()}"):
        r = auditor.get("/api/v1/tickets", params={"on_behalf_of": typed})
        assert r.status_code == 200, r.text[:300]
        assert [t["id"] for t in r.json()["items"]] == [new, old] and r.json()["count"] == 2, typed
        r = auditor.get("/api/v1/tickets", params={"actor": typed, "limit": 1})  # keyset over both forms
        first = r.json()
        second = auditor.get("/api/v1/tickets", params={"actor": typed, "limit": 1, "cursor": first["next_cursor"]})
        assert [first["items"][0]["id"], second.json()["items"][0]["id"]] == [new, old], typed
        assert second.json()["next_cursor"] is None
        r = auditor.get("/api/v1/audit/events", params={"on_behalf_of": typed})
        assert r.json()["count"] == 2, typed
        page = auditor.get("/audit/tickets", params={"on_behalf_of": typed})
        assert "Nothing matches this filter" not in page.text and f"FL-{new:06d}" in page.text
    export = auditor.get("/api/v1/audit/export", params={"kind": "tickets", "format": "jsonl", "actor": who})
    assert export.status_code == 200 and len(export.text.splitlines()) == 2
    # a name of no declared directory is searched as given
    ledger.event(actor=f"{who}@elsewhere.example")
    r = auditor.get("/api/v1/audit/events", params={"actor": f"{who}@elsewhere.example"})
    assert r.status_code == 200 and r.json()["count"] == 1


@pytest.mark.parametrize(
    ("path", "field", "listed"),
    [
        ("/api/v1/tickets", "state", "queued, running, in_progress, resolved, escalated, closed"),
        ("/api/v1/tickets", "channel", "portal, api, cli, worker"),
        ("/api/v1/audit/events", "outcome", "success, no_change, failure, unknown, refused, denied"),
        ("/api/v1/audit/events", "state", "resolved"),
        ("/api/v1/audit/events", "channel", "worker"),
    ],
)
def test_a_misspelled_enumerated_filter_is_422_naming_it_and_its_values(
    portal: PortalServer, signed_in: Callable[..., SignedIn], path: str, field: str, listed: str
) -> None:
    auditor = signed_in("auditor")
    r = auditor.get(path, params={field: "bogus"})
    assert r.status_code == 422, r.text[:300]
    message = json.dumps(r.json())
    assert f"{field} 'bogus' is not a valid value; choose one of: " in message and listed in message
    kind = "tickets" if path.endswith("tickets") else "events"
    r = auditor.get("/api/v1/audit/export", params={"kind": kind, field: "bogus"})
    assert r.status_code == 422


def test_the_pages_refuse_a_misspelled_value_in_english_and_dutch(
    portal: PortalServer, signed_in: Callable[..., SignedIn]
) -> None:
    auditor = signed_in("auditor")
    page = auditor.get("/audit/tickets", params={"state": "bogus"})
    assert page.status_code == 422
    assert "state 'bogus' is not a valid value; choose one of: awaiting_approval, queued" in html.unescape(page.text)
    page = auditor.get("/audit/events", params={"outcome": "bogus"})
    assert page.status_code == 422 and "outcome 'bogus' is not a valid value" in html.unescape(page.text)
    auditor.client.cookies.set("fl_lang", "nl")
    page = auditor.get("/audit/events", params={"outcome": "bogus"})
    assert page.status_code == 422
    assert "outcome 'bogus' is geen geldige waarde; kies een van: success" in html.unescape(page.text)


def _fl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FIRSTLINE, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_the_cli_records_the_portals_principal_and_its_search_finds_both_forms(
    portal: PortalServer, signed_in: Callable[..., SignedIn], ledger: Ledger
) -> None:
    env = {
        **os.environ,
        "FIRSTLINE_DATABASE_URL": portal.database_url,
        "FIRSTLINE_DATA_DIR": str(portal.data_dir),
        "FIRSTLINE_RUNBOOKS_DIR": str(REPO / "runbooks"),
        "FIRSTLINE_INVENTORY": str(REPO / "lab" / "inventory.yaml"),
        "FIRSTLINE_LOG_FILE": str(portal.data_dir / "cli.log"),
        "FIRSTLINE_ENVIRONMENT": "test",
    }
    r = _fl(env, "run", "account-status", "-p", "user=demo-employee", "--as", "DEMO-EMPLOYEE", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    number = json.loads(r.stdout)["ticket"]
    auditor = signed_in("auditor")
    found = auditor.get("/api/v1/tickets", params={"ticket": number}).json()["items"][0]
    assert found["requester"] == "demo-employee@example.org"  # as the portal records demo-employee
    r = _fl(env, "run", "account-status", "-p", "user=demo-employee", "--as", "EXAMPLE\\demo-employee", "--dry-run")
    assert r.returncode == 0 and "demo-employee@example.test" in r.stdout, r.stdout + r.stderr
    r = _fl(env, "run", "account-status", "-p", "user=x", "--as", "demo-employee@nowhere.example", "--dry-run")
    assert r.returncode == 2 and "--as: the domain is not one this service desk serves" in r.stdout + r.stderr
    # tickets list --requester finds the old bare form and the new one
    who = unique("clio")
    old = ledger.ticket(requester=who, subject=who)
    new = ledger.ticket(requester=f"{who}@example.org", subject=who)
    for typed in (who, f"EXAMPLE-ORG\\{who.upper()}"):
        listed = _fl(env, "tickets", "list", "--requester", typed).stdout
        assert f"FL-{new:06d}" in listed and f"FL-{old:06d}" in listed, (typed, listed)
